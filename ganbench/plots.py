"""Plots of generated samples: per-run evaluation images and the report's side-by-side figure use the same code. A
class-conditional G's samples are shown by class: coloured like their class's mode, or one grid row per class."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from ganbench.data.mixtures import MixtureDataModule


def scatter_over_modes(
    ax: Axes, samples: np.ndarray, means: np.ndarray, title: str, labels: np.ndarray | None = None
) -> None:
    """Generated 2-D points (blue) over the mixture's means (red crosses), on the data's own square extent. With
    ``labels`` (a conditional G's classes, i.e. the modes it was asked for) a point takes the colour of its class's
    mode, drawn as a ring of that colour: a point of another colour inside a ring was generated for another mode."""
    finite_rows = np.isfinite(samples).all(axis=1)
    finite = samples[finite_rows]
    if labels is None:
        ax.scatter(finite[:, 0], finite[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
        ax.scatter(means[:, 0], means[:, 1], s=40, marker="x", color="tab:red", label="modes")
    else:
        colours = colormaps["hsv"](np.arange(len(means)) / len(means))
        ax.scatter(means[:, 0], means[:, 1], s=150, marker="o", facecolors="none", edgecolors=colours, zorder=1)
        ax.scatter(finite[:, 0], finite[:, 1], s=2, alpha=0.4, color=colours[labels[finite_rows]], zorder=2)
    half_width = 1.5 * np.abs(means).max()
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_aspect("equal")
    ax.set_title(title)
    hidden = len(samples) - int((np.abs(finite) <= half_width).all(axis=1).sum())
    if hidden:  # a generator that wandered off must not look like an empty plot
        ax.text(0.02, 0.02, f"{hidden} of {len(samples)} samples outside the view", transform=ax.transAxes, fontsize=8)


class ModeScatter:
    """Sample plot for 2-D mixtures: the generated points over the mixture's modes."""

    def __init__(self) -> None:
        self.means: np.ndarray | None = None

    def setup(self, datamodule: MixtureDataModule) -> None:
        self.means = datamodule.mixture.means.numpy()

    def __call__(self, samples: Tensor, title: str, labels: Tensor | None = None) -> Figure:
        if self.means is None:
            raise RuntimeError("ModeScatter.setup(datamodule) must run before plotting")
        figure = Figure(figsize=(4, 4))
        classes = None if labels is None else labels.numpy()
        scatter_over_modes(figure.add_subplot(), samples.numpy(), self.means, title, classes)
        return figure


def by_class(samples: Tensor, labels: Tensor, per_class: int) -> tuple[Tensor, int]:
    """The first samples of each class, class after class, as many of each as every class has (at most
    ``per_class``): the rows of a grid with one row per class, and that row length."""
    classes = [torch.nonzero(labels == k).flatten() for k in range(int(labels.max()) + 1)]
    columns = min(per_class, *(len(members) for members in classes))
    return samples[torch.cat([members[:columns] for members in classes])], columns


class ImageGrid:
    """Sample plot for images in [−1, 1]: the first ``rows`` × ``rows`` samples as one grid; a conditional G's as
    one row per class (up to ``rows`` samples each)."""

    def __init__(self, rows: int = 8) -> None:
        self.rows = rows

    def setup(self, datamodule: object) -> None:
        """Nothing to take from the data: images are shown as they are."""

    def __call__(self, samples: Tensor, title: str, labels: Tensor | None = None) -> Figure:
        if labels is None:
            shown, columns = samples[: self.rows**2], self.rows
        else:
            shown, columns = by_class(samples, labels, self.rows)
        images = ((shown.clamp(-1, 1) + 1) / 2).float()
        grid = make_grid(images, nrow=columns, padding=1, pad_value=1.0)
        figure = Figure(figsize=(5, 5))
        ax = figure.add_subplot()
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if images.shape[1] == 1 else None)
        ax.set_axis_off()
        ax.set_title(title)
        return figure
