"""One plotting style for every figure: mean over seeds with an interquartile band, theory dashed.

Conventions (all figures):

* the curve is the mean over seeds (the geometric mean on a log axis, where the quantity decays
  geometrically and an arithmetic mean would follow the single worst seed); the band is the
  **interquartile range** (25th to 75th percentile) over seeds;
* the theory (a bound, a predicted rate or law) is drawn **dashed**, in black or in its curve's
  colour;
* log scales wherever a quantity decays geometrically (risk, loss, error);
* labels use the papers' symbols (alpha^2, eta, kappa, ||A_t B_t - dW||, ...) and legends name inits
  and optimizers as the SPEC does (``random``, ``spectral``, ``lora_one``, ``lora_ga``, ``lora_sb``,
  ``hrp``, ``oracle``; ``gd``, ``precgd``);
* every figure is saved as PNG (for the README) and PDF (for papers).

Uses matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.lines import Line2D
    from matplotlib.typing import LegendLocType, RcKeyType

__all__ = [
    "STYLE",
    "INIT_COLORS",
    "OPTIMIZER_STYLES",
    "figure",
    "band",
    "summarise",
    "theory",
    "save_figure",
    "caption",
]

STYLE: dict[RcKeyType, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.6,
}

INIT_COLORS = {
    "random": "#1f77b4",
    "spectral": "#d62728",
    "lora_one": "#2ca02c",
    "lora_ga": "#ff7f0e",
    "lora_sb": "#9467bd",
    "hrp": "#8c564b",
    "oracle": "#17becf",
}

OPTIMIZER_STYLES = {"gd": "-", "precgd": "-."}

THEORY_KW = {"linestyle": "--", "linewidth": 1.3}


def figure(
    ncols: int, nrows: int = 1, *, width: float = 4.0, height: float = 3.2, **kwargs: Any
) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows x ncols`` panels in the suite's style (constrained layout)."""
    matplotlib.rcParams.update(STYLE)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), layout="constrained", squeeze=False, **kwargs
    )
    return fig, axes


def summarise(values: np.ndarray, *, log: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, 25th percentile, 75th percentile) over axis 0 (the seeds); geometric mean if ``log``.

    Non-finite values (diverged runs) are ignored.
    """
    values = np.asarray(values, np.float64)
    finite = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if log:
                positive = np.where(finite > 0, finite, np.nan)
                mean = np.exp(np.nanmean(np.log(positive), axis=0))
            else:
                mean = np.nanmean(finite, axis=0)
            low, high = np.nanpercentile(finite, [25, 75], axis=0)
    return mean, low, high


def band(
    ax: Axes,
    x: Any,
    values: Any,
    *,
    label: str | None = None,
    color: Any = None,
    log: bool | None = None,
    linestyle: str = "-",
    marker: str | None = None,
    alpha: float = 0.2,
    **kwargs: Any,
) -> Line2D:
    """Draw the mean over seeds (rows of ``values``) with its interquartile band; returns the line."""
    if log is None:
        log = ax.get_yscale() == "log"
    mean, low, high = summarise(values, log=log)
    (line,) = ax.plot(x, mean, label=label, color=color, linestyle=linestyle, marker=marker, **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def theory(ax: Axes, x: Any, y: Any, *, label: str | None = None, color: Any = "black", **kwargs: Any) -> Line2D:
    """Draw a theory curve (dashed)."""
    style = {**THEORY_KW, **kwargs}
    (line,) = ax.plot(x, y, color=color, label=label, **style)
    return line


def caption(fig: Figure, text: str) -> None:
    """A caption under the panels (e.g. how the band is computed), wrapped to the figure's width."""
    width = max(40, int(fig.get_figwidth() * 17))
    lines: list[str] = []
    for part in text.split("; "):  # break only between clauses, never inside $...$
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += "; " + part
        else:
            lines.append(part)
    fig.supxlabel("\n".join(lines), fontsize=7.5, color="0.3")


def save_figure(fig: Figure, figures_dir: str | Path, name: str) -> list[Path]:
    """Save ``fig`` as ``{figures_dir}/{name}.png`` and ``.pdf``; close it; return the paths."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = [figures_dir / f"{name}.png", figures_dir / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=STYLE["savefig.dpi"] if path.suffix == ".png" else None)
    plt.close(fig)
    return paths


def per_seed_matrix(df: Any, value: str, index: str = "seed", column: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """(x values, matrix seeds x x) of ``value`` from a tidy frame holding one curve."""
    table = df.pivot_table(index=index, columns=column, values=value, aggfunc="first")
    return table.columns.to_numpy(), table.to_numpy()


def legend(ax: Axes, *, loc: LegendLocType = "best", **kwargs: Any) -> Legend:
    """A legend that never hides data behind an opaque box."""
    return ax.legend(loc=loc, **kwargs)


def color_cycle(n: int, cmap: str = "viridis", lo: float = 0.0, hi: float = 0.9) -> Sequence:
    """``n`` colours from a sequential colormap (for swept parameters such as alpha^2, d, kappa)."""
    cm = plt.get_cmap(cmap)
    return [cm(v) for v in np.linspace(lo, hi, max(n, 1))]
