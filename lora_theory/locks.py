"""Lock files: which process is computing which chunk of a sweep, so that two never do the same one.

A lock is a small JSON file (host, boot id, pid, the process's start time, a random token, when
it was taken) beside the chunk it guards.  It is taken atomically and without clobbering: the
content is written to a temporary file first, then hard-linked to the lock's name (``link``
fails if the name exists, on local file systems and on NFS alike), so a lock file is never
seen half-written and a process killed at any moment leaves either no lock or a complete one.
(On a file system without hard links, ``O_CREAT | O_EXCL`` creation, then the content.)
While held, a background thread refreshes the file's modification time (the heartbeat).

A lock is **stale**, and the next process takes it over, when its holder is gone:

* on the same machine (same host name and boot id): the pid no longer runs, or runs another
  program (its start time differs): detected at once, so a sweep killed with SIGKILL resumes
  without waiting;
* on another machine (a cluster node): its heartbeat is older than ``stale_after`` seconds (a
  pid means nothing there).

Why not ``flock``/``fcntl`` locks: they vanish with their process (no stale locks at all), but
over NFS or Lustre they work only where the mount enables them, and a sweep folder shared by a
cluster's nodes is exactly there.  A file that is created atomically and names its holder works
on any file system that keeps ``link`` atomic, and can be inspected (``cat``) by a person.

Correctness does not rest on the lock: a chunk is written with an atomic rename and two
computations of one chunk give the same bytes, so in the rare race where two processes both
judge a lock stale and both compute the chunk, the cost is duplicated work, never a corrupt or
mixed file.  The lock saves work; the atomic write keeps the results right.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["ChunkLock", "holder_identity", "is_stale", "STALE_AFTER_S", "HEARTBEAT_S"]

#: a lock held by another machine whose heartbeat is older than this is taken over.
STALE_AFTER_S = 600.0
#: how often a held lock's modification time is refreshed.
HEARTBEAT_S = 30.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc/PID/stat``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (after the command name, which may hold spaces)


def holder_identity() -> dict[str, Any]:
    """This process, as a lock records it: host, boot id, pid and the process's start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid": pid, "pid_start": _start_time(pid)}


def _alive_here(pid: int, pid_start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    if pid_start is not None:
        now = _start_time(pid)
        if now is not None and now != pid_start:  # the pid was reused by another process
            return False
    return True


def is_stale(path: str | os.PathLike, stale_after: float = STALE_AFTER_S) -> bool:
    """Whether the lock file at ``path`` belongs to a holder that is gone.

    Args:
        path: the lock file.
        stale_after: seconds without a heartbeat after which another machine's lock is stale.

    Returns:
        True for a stale lock (and for a file that is not a lock, which no process holds);
        False for a live one or when the file is gone.
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    if not isinstance(info, dict):
        return True
    me = holder_identity()
    if info.get("host") == me["host"] and info.get("boot_id") == me["boot_id"] and isinstance(info.get("pid"), int):
        return not _alive_here(info["pid"], info.get("pid_start"))
    return age > stale_after


class ChunkLock:
    """One lock file, taken with :meth:`acquire`, refreshed while held, released with :meth:`release`.

    Also a context manager (``with ChunkLock(path) as got:``, ``got`` False when another live
    process holds it).

    Args:
        path: the lock file (its folder must exist).
        stale_after: see :func:`is_stale`.
        heartbeat: seconds between refreshes of the held lock's modification time.
    """

    def __init__(self, path: str | os.PathLike, *, stale_after: float = STALE_AFTER_S, heartbeat: float = HEARTBEAT_S):
        self.path = Path(path)
        self.stale_after = float(stale_after)
        self.heartbeat = float(heartbeat)
        self.token = uuid.uuid4().hex
        self._stop: threading.Event | None = None

    def _create(self) -> bool:
        info = {**holder_identity(), "token": self.token, "taken_at": time.time()}
        tmp = self.path.with_name(f".{self.path.name}.{self.token}.tmp")
        tmp.write_text(json.dumps(info))
        try:
            os.link(tmp, self.path)  # atomic and never clobbers: fails if the lock exists
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive creation, then the content
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as handle:
                handle.write(tmp.read_text())
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _break(self) -> None:
        """Remove a stale lock, unless another process replaced it meanwhile."""
        try:
            seen = self.path.read_bytes()
        except OSError:
            return
        moved = self.path.with_name(f".{self.path.name}.{self.token}.stale")
        try:
            os.rename(self.path, moved)
        except OSError:
            return
        try:
            if moved.read_bytes() != seen:  # a fresh lock was taken since we looked: put it back
                try:
                    os.link(moved, self.path)
                except OSError:
                    pass
        finally:
            moved.unlink(missing_ok=True)

    def acquire(self) -> bool:
        """Take the lock, taking over a stale one; False when a live holder has it.

        Raises:
            FileNotFoundError: when the lock's folder does not exist (e.g. it was removed).
        """
        if self._stop is not None:
            return True
        got = self._create()
        if not got and is_stale(self.path, self.stale_after):
            self._break()
            got = self._create()
        if got:
            self._stop = threading.Event()
            threading.Thread(
                target=self._beat, args=(self._stop,), daemon=True, name=f"heartbeat {self.path.name}"
            ).start()
        return got

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except OSError:
                return

    def held(self) -> bool:
        """Whether this object holds the lock now (its file exists and carries its token)."""
        try:
            return self._stop is not None and json.loads(self.path.read_text()).get("token") == self.token
        except (OSError, ValueError):
            return False

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still this holder's."""
        if self._stop is None:
            return
        self._stop.set()
        self._stop = None
        try:
            if json.loads(self.path.read_text()).get("token") == self.token:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
