"""What every figure shares: a colour map that reads in grayscale and for
colour-blind readers (cividis), distinct markers and line styles so curves survive
black-and-white print, titles that name the experiment, and PNG + PDF output. The backend
is matplotlib's choice, or Agg where the command line found no display (counting.cli.prepare)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

CMAP = "cividis"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))


def colors(k: int) -> list:
    """k colours along cividis, avoiding its lightest end (invisible on white)."""
    return [plt.get_cmap(CMAP)(x) for x in np.linspace(0.0, 0.85, max(k, 1))]


def curve_style(i: int, k: int) -> dict:
    """Curve i of k: its colour, marker and line style."""
    return {"color": colors(k)[i], "marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def title(experiment: str, label: str, seeds: int | str, extra: str = "") -> str:
    """'quick: task=qc n=16, 3 seeds (tau = 0.9)'."""
    s = f"{experiment}: {label}, " + (seeds if isinstance(seeds, str) else f"{seeds} seed{'s' if seeds != 1 else ''}")
    return s + (f" {extra}" if extra else "")


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Writes the figure as out_dir/name.png (150 dpi) and name.pdf (without a creation date, so a rerun writes
    the same bytes), closes it, and returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})  # the same bytes on a rerun
    plt.close(fig)
    return paths


def log_edges(values) -> np.ndarray:
    """Cell edges for a log-scaled heatmap axis: geometric midpoints, half a step beyond the ends."""
    v = np.log2(np.asarray(sorted(values), np.float64))
    if len(v) == 1:
        return 2.0 ** np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return 2.0 ** np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def file_suffix(columns: list[str], series: tuple, many: bool) -> str:
    """'' when the experiment has one series, else '_task-qc_n-16_pos-rope' etc."""
    return "".join(f"_{c}-{v}" for c, v in zip(columns, series)) if many else ""
