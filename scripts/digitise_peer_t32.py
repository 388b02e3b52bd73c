"""Their T = 32 phase diagrams (Behrens et al., Fig. 1/2) as numbers, read off the published
figure files: the mean and the standard deviation over their 5 runs of each (d, p) cell that
our reduced diagram trains (peer_behrens_t32, _bos: d, p in {4, 16, 64}), written to
results/peer_behrens/published_t32.csv, which `counting-peer behrens` compares with ours.

    git clone https://github.com/SPOC-group/counting-attention && git -C counting-attention checkout 507b82d
    python scripts/digitise_peer_t32.py counting-attention/figures

Their repository prints no number of these diagrams (the notebook
`[Fig01,02,10,11]-phase-diagram-T32.ipynb` reads the cells from wandb, at epoch 499, L = 10);
the figures are `ax.pcolor` images of the cell values with a fixed colour scale:
`memorizing_counts-phase-diagram-T32-avg.png` (mean val_acc in %, cmap Spectral, 0..100, cells
centred at p + 1, d + 1) and `...-std.png` (std over the 5 runs, ddof 1 as pandas computes it,
cmap Oranges, 0..40, cells centred at p, d). Both are 2 x 3 panels; the top row is the softmax
variants: [bos] (dotBOS+sftm) left, [dot] (dot+sftm) middle.

Method: each panel's frame is found from its dark spine lines; a cell's centre is placed on the
log axes (limits: the nearest-shading edges, half a cell beyond the outer centres); the median
colour of a 5 x 5 patch there is matched to the nearest of the colour map's 256 colours. A
cell's value is good to half a colour step (100 / 255 / 2 = 0.2 points for the mean, 0.08 for
the std); the script stops if a matched colour is farther than 0.02 in RGB from the map (a
wrong panel, axis or colour map) or a patch spans more than one colour step.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

GRID = [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128]  # their d and p values
CELLS = [4, 16, 64]  # the d and p of our reduced diagram
PANELS = {"dotBOS+sftm": (0, 0), "dot+sftm": (0, 1)}  # variant -> (row, column) of the 2 x 3 panels
FIGURES = {  # statistic -> (file, colour map, vmax, cell centre offset)
    "mean_over_seeds": ("memorizing_counts-phase-diagram-T32-avg.png", "Spectral", 100.0, 1),
    "std_over_seeds": ("memorizing_counts-phase-diagram-T32-std.png", "Oranges", 40.0, 0),
}
SOURCE = "SPOC-group/counting-attention@507b82d, figures/"
MAX_RESIDUAL = 0.02  # RGB distance from the colour map beyond which a pixel is not a cell colour


def spines(dark_HxW: np.ndarray, axis: int) -> list[int]:
    """Pixel positions of long dark lines along `axis` (0: vertical lines, as columns), each run
    of adjacent positions reduced to its centre."""
    long = np.flatnonzero(dark_HxW.sum(axis=axis) > 0.3 * dark_HxW.shape[axis])
    runs: list[list[int]] = []
    for i in long:
        if runs and i - runs[-1][-1] <= 1:
            runs[-1].append(int(i))
        else:
            runs.append([int(i)])
    return [round(sum(r) / len(r)) for r in runs]


def frames(image_HxWx3: np.ndarray) -> tuple[list[int], list[int]]:
    """The panels' frame lines: x positions of their left and right spines (6: three panels)
    and y positions of their top and bottom spines (4: two rows)."""
    dark_HxW = (image_HxWx3.sum(axis=2) < 0.6).astype(np.float64)
    xs, ys = spines(dark_HxW, 0), spines(dark_HxW, 1)
    if len(xs) < 6 or len(ys) < 4:
        sys.exit(f"found {len(xs)} vertical and {len(ys)} horizontal frame lines, expected 6 and 4")
    return xs[:6], ys[:4]


def limits(offset: int) -> tuple[float, float]:
    """The axis limits of nearest shading: half a cell beyond the first and last centres."""
    c = [v + offset for v in GRID]
    return c[0] - (c[1] - c[0]) / 2, c[-1] + (c[-1] - c[-2]) / 2


def read(path: Path, cmap: str, vmax: float, offset: int) -> dict[tuple[str, int, int], float]:
    """(variant, d, p) -> the cell's value in the figure's units."""
    image = plt.imread(path)[:, :, :3].astype(np.float64)
    lut_Kx3 = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    values_K = np.linspace(0, vmax, 256)
    xs, ys = frames(image)
    lo, hi = (np.log10(v) for v in limits(offset))
    out = {}
    for variant, (row, col) in PANELS.items():
        x0, x1 = xs[2 * col], xs[2 * col + 1]
        y_top, y_bottom = ys[2 * row], ys[2 * row + 1]
        for d in CELLS:
            for p in CELLS:
                x = round(x0 + (np.log10(p + offset) - lo) / (hi - lo) * (x1 - x0))
                y = round(y_bottom - (np.log10(d + offset) - lo) / (hi - lo) * (y_bottom - y_top))
                patch_Px3 = image[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
                dist_PxK = np.linalg.norm(patch_Px3[:, None, :] - lut_Kx3[None], axis=2)
                k_P = dist_PxK.argmin(axis=1)
                residual = dist_PxK.min(axis=1).max()
                if residual > MAX_RESIDUAL or np.ptp(k_P) > 1:
                    sys.exit(f"{path.name}: {variant} d = {d}, p = {p}: colour off the map (residual {residual:.3f}, "
                             f"spread {np.ptp(k_P)} steps)")
                out[(variant, d, p)] = float(values_K[int(np.median(k_P))])
    return out


def main(figures: Path, out: Path = Path("results/peer_behrens/published_t32.csv")) -> None:
    rows = []
    for statistic, (name, cmap, vmax, offset) in FIGURES.items():
        for (variant, d, p), value in read(figures / name, cmap, vmax, offset).items():
            rows.append({"figure": "Fig01/02", "variant": variant, "T": 32, "L": 10, "d": d, "p": p,
                         "statistic": statistic, "accuracy": f"{value:.1f}", "n_seeds": 5,
                         "resolution": f"{vmax / 255 / 2:.2f}", "source_file": SOURCE + name,
                         "note": f"digitised by scripts/digitise_peer_t32.py (cmap {cmap}, 0..{vmax:g}); "
                                 "per-token val_acc [%] at epoch 499, over their 5 runs"})
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} values -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
