"""Cold compile-and-run time of the bit-for-bit reference runs (tests/reference_runs.py: 8 small
configs, 3 models, both optimizers), for A/B comparisons of tracing and compilation cost.

Run it for each version of the package, alternating, with the compilation cache off::

    git archive OLD lora_theory | tar -x -C /tmp/old
    for p in /tmp/old . /tmp/old .; do
        XLA_FLAGS=--xla_backend_optimization_level=0 JAX_ENABLE_COMPILATION_CACHE=false \\
            PYTHONPATH=$p python benchmarks/compile_time_ab.py
    done
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import reference_runs  # noqa: E402

import lora_theory  # noqa: E402

start = time.perf_counter()
reference_runs.run_all()
print(f"{lora_theory.__file__}: {time.perf_counter() - start:.1f} s")
