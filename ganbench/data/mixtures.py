"""2-D Gaussian mixtures, the mode-collapse benchmark of VEEGAN / PacGAN (protocol: docs/mixtures.md).

Samples are drawn on the fly from a seeded generator, so the "dataset" is infinite and needs no files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset


class GaussianMixture:
    """Equal-weight mixture of isotropic Gaussians with a common standard deviation."""

    def __init__(self, means: Tensor, std: float) -> None:
        self.means = means.to(torch.float32)
        self.std = float(std)

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        modes = torch.randint(self.num_modes, (n,), generator=generator)
        noise = torch.randn((n, self.means.shape[1]), generator=generator)
        return self.means[modes] + self.std * noise


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """Modes evenly spaced on a circle, at angles 2πk/num_modes."""
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return GaussianMixture(radius * torch.stack([angles.cos(), angles.sin()], dim=1), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """side × side modes on a square lattice centred at the origin ({−4, −2, 0, 2, 4}² by default)."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture(torch.stack([xs.flatten(), ys.flatten()], dim=1), std)


class _MixtureStream(IterableDataset):
    """Endless batches from a mixture; each iteration restarts from the same seed."""

    def __init__(self, mixture: GaussianMixture, batch_size: int, seed: int) -> None:
        self.mixture = mixture
        self.batch_size = batch_size
        self.seed = seed

    def __iter__(self) -> Iterator[Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            yield self.mixture.sample(self.batch_size, generator)


class MixtureDataModule(pl.LightningDataModule):
    """Training data for one GAN step: ``batches_per_step`` real batches of ``batch_size`` points, concatenated.

    The trainer sets ``batches_per_step`` to n_critic so that every discriminator step sees its own real batch.
    """

    def __init__(self, name: str, mixture: GaussianMixture, batch_size: int = 100, seed: int = 0) -> None:
        super().__init__()
        self.name = name
        self.mixture = mixture
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_step = 1

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        stream = _MixtureStream(self.mixture, self.batch_size * self.batches_per_step, self.seed + rank)
        return DataLoader(stream, batch_size=None)
