"""Plot primitives shared by the per-run evaluation images and the comparison report."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes


def scatter_over_modes(ax: Axes, samples: np.ndarray, means: np.ndarray, title: str) -> None:
    """Generated 2-D points (blue) over the mixture's means (red crosses), on the data's own square extent."""
    finite = samples[np.isfinite(samples).all(axis=1)]
    ax.scatter(finite[:, 0], finite[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
    ax.scatter(means[:, 0], means[:, 1], s=40, marker="x", color="tab:red", label="modes")
    half_width = 1.5 * np.abs(means).max()
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_aspect("equal")
    ax.set_title(title)
