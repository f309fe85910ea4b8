"""2-D Gaussian mixtures, the mode-collapse benchmark of VEEGAN / PacGAN (protocol: docs/mixtures.md).

Samples are drawn on the fly from a seeded generator, so the "dataset" is infinite and needs no files. A point's class
is the index of the mode it was drawn from (the labels of a class-conditional run, ``labels=True``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from ganbench.data.batching import process_batch_size
from ganbench.errors import UserError


class GaussianMixture:
    """Equal-weight mixture of isotropic Gaussians with a common standard deviation."""

    def __init__(self, means: Tensor, std: float) -> None:
        self.means = means.to(torch.float32)
        self.std = float(std)

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n points and the index of the mode each was drawn from."""
        modes = torch.randint(self.num_modes, (n,), generator=generator)
        noise = torch.randn((n, self.means.shape[1]), generator=generator)
        return self.means[modes] + self.std * noise, modes


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """Modes evenly spaced on a circle, at angles 2πk/num_modes."""
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return GaussianMixture(radius * torch.stack([angles.cos(), angles.sin()], dim=1), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """side × side modes on a square lattice centred at the origin ({−4, −2, 0, 2, 4}² by default)."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture(torch.stack([xs.flatten(), ys.flatten()], dim=1), std)


def batch_seed(seed: int, rank: int, index: int) -> int:
    """The RNG seed of batch ``index`` on process ``rank``: the data of every step is a pure function of these, so a
    resumed run draws exactly the batches an uninterrupted run would have drawn."""
    return hash((seed, rank, index)) & (2**63 - 1)


class _MixtureStream(IterableDataset):
    """Endless batches from a mixture, batch i drawn from its own seeded generator, starting at batch ``start``;
    each batch is the points, or [points, modes] with ``labels``."""

    def __init__(
        self, mixture: GaussianMixture, batch_size: int, seed: int, rank: int, start: int, labels: bool
    ) -> None:
        self.mixture = mixture
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.start = start
        self.labels = labels

    def __iter__(self) -> Iterator[Tensor | list[Tensor]]:
        for index in itertools.count(self.start):
            generator = torch.Generator().manual_seed(batch_seed(self.seed, self.rank, index))
            points, modes = self.mixture.sample_labelled(self.batch_size, generator)
            yield [points, modes] if self.labels else points


REFERENCE_SEED = 2**31 - 1  # the reference draws: far from the training seeds (seed + rank, batch_seed)


class MixtureDataModule(pl.LightningDataModule):
    """Training data for one GAN step: ``batches_per_step`` real batches concatenated (the trainer sets it to
    n_critic, so every discriminator step sees its own real batch).

    ``batch_size`` is the global batch: with N processes each draws batch_size / N points per batch. With
    ``labels`` a batch also holds each point's mode, its class; ``num_classes``, the config's, must be the modes'.
    """

    def __init__(
        self,
        name: str,
        mixture: GaussianMixture,
        batch_size: int = 100,
        seed: int = 0,
        labels: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes is not None and num_classes != mixture.num_modes:
            raise UserError(
                f"dataset.num_classes={num_classes} but the {name} mixture has {mixture.num_modes} modes, and a "
                f"point's class is its mode: set dataset.num_classes={mixture.num_modes}"
            )
        self.name = name
        self.mixture = mixture
        self.batch_size = batch_size
        self.seed = seed
        self.labels = labels
        self.batches_per_step = 1

    def train_dataloader(self) -> DataLoader:
        rank, world_size, start = 0, 1, 0
        if self.trainer is not None:
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
            start = self.trainer.lightning_module.g_steps
        per_process = process_batch_size(self.batch_size, world_size)
        stream = _MixtureStream(self.mixture, per_process * self.batches_per_step, self.seed, rank, start, self.labels)
        # An own generator: creating the iterator must not draw from the global RNG, or a resumed run's noise shifts.
        return DataLoader(stream, batch_size=None, generator=torch.Generator().manual_seed(self.seed))

    def reference_samples(self, count: int) -> Tensor:
        """Real points to compare generated ones with (ganbench.diagnostics): fixed draws, the same for every run."""
        return self.mixture.sample(count, generator=torch.Generator().manual_seed(REFERENCE_SEED))
