"""Exact precision, recall and F1 on the triangles data set (definitions and δ: docs/triangles.md).

Precision: the share of generated samples within L2 distance δ of the triangle manifold — the images the data
generator can make, rendered anti-aliased by exact pixel area (:mod:`ganbench.metrics.triangle_fit`).
Recall: the share of real test triangles within δ of the generator's range, found by inverting G
(:mod:`ganbench.metrics.inversion`). This module turns the two sets of distances into the protocol's scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchmetrics.aggregation import CatMetric

from ganbench.data.images import ImageDataModule
from ganbench.metrics.inversion import generator_distance
from ganbench.metrics.triangle_fit import TriangleManifold

# δ: the most permissive threshold, rounded down to 0.05, at which at most 1% of every designated near-miss negative
# set (quadrilaterals, blurred, rounded and overlapping triangles, grey images) is precise and every real hold-out and
# test triangle is (`python scripts/bench_triangles.py delta`, with TriangleManifold's defaults; docs/triangles.md)
DELTA = 0.95
# the thresholds of the P(δ) and R(δ) curves every evaluation records ("precision@1.5"), DELTA among them
CURVE_DELTAS = (0.25, 0.5, 0.75, DELTA, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


def stack_images(dataset: Dataset, count: int) -> Tensor:
    """The first ``count`` images of an image dataset in [−1, 1], as (count, 28, 28) in [0, 1]."""
    count = min(count, len(dataset))  # type: ignore[arg-type]
    return (torch.stack([dataset[i] for i in range(count)]).flatten(0, 1) + 1.0) / 2.0


class TriangleScorer:
    """precision, recall and F1 at threshold ``delta`` on the first ``num_fake`` generated samples (split over DDP
    ranks) and the first ``num_real`` images of ``real_split``, and both shares at ``delta`` and every δ of
    ``curve_deltas`` ("precision@1.5"): how the scores depend on δ, from the same distances. Distances are gathered
    in torchmetrics states, so the metrics are the same on 1 or N processes."""

    def __init__(
        self,
        delta: float = DELTA,
        curve_deltas: Sequence[float] = CURVE_DELTAS,
        num_fake: int = 1000,
        num_real: int = 500,
        real_split: str = "test",
        fit_bank: int = 8192,
        fit_restarts: int = 4,
        fit_screening: int = 3,
        fit_iterations: int = 8,
        invert_bank: int = 4096,
        invert_restarts: int = 2,
        invert_steps: int = 50,
        invert_lr: float = 0.05,
        chunk_size: int = 250,
        seed: int = 0,
    ) -> None:
        self.delta = delta
        self.curve_deltas = tuple(sorted({float(d) for d in (*curve_deltas, delta)}))  # the curves pass through δ
        self.num_fake = num_fake
        self.num_real = num_real
        self.real_split = real_split
        self.fit = {
            "bank_size": fit_bank,
            "restarts": fit_restarts,
            "screening": fit_screening,
            "iterations": fit_iterations,
            "chunk_size": chunk_size,
            "seed": seed,
        }
        self.invert = {
            "bank_size": invert_bank,
            "restarts": invert_restarts,
            "steps": invert_steps,
            "lr": invert_lr,
            "chunk_size": chunk_size,
            "seed": seed,
        }
        self.fake_distances = CatMetric(nan_strategy="disable")
        self.real_distances = CatMetric(nan_strategy="disable")
        self.manifold: TriangleManifold | None = None
        self.real: Tensor | None = None
        self.reference_id: str | None = None
        self.quota = num_fake
        self.seen = 0

    def describe(self) -> dict[str, Any]:
        """The protocol as run, for the run record (the real images are named after ``setup``)."""
        return {
            "metrics": ["precision", "recall", "f1", "manifold_distance", "inversion_distance"],
            "distance": "L2 over 28x28 pixels in [0, 1]",
            "delta": self.delta,
            "curve_deltas": list(self.curve_deltas),
            "num_fake": self.num_fake,
            "num_real": self.num_real,
            "real_split": self.real_split,
            "reference": self.reference_id,
            "manifold_fit": {"method": "Levenberg-Marquardt on the data generator's draws", **self.fit},
            "inversion": {"method": "Adam on z, projected onto the latent's box", **self.invert},
        }

    def setup(self, datamodule: ImageDataModule, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """This rank's share of the real images (every ``world_size``-th) and of the generated samples to score."""
        self.reference_id = datamodule.reference_id(self.real_split)
        self.real = stack_images(datamodule.eval_dataset(self.real_split), self.num_real)[rank::world_size].to(device)
        self.quota = math.ceil(self.num_fake / world_size)
        self.manifold = TriangleManifold(device=device, **self.fit)
        self.fake_distances.to(device)
        self.real_distances.to(device)

    def reset(self) -> None:
        self.fake_distances.reset()
        self.real_distances.reset()
        self.seen = 0

    def update(self, fake: Tensor, labels: Tensor | None = None) -> None:
        """One chunk of samples; the classes they were generated for (``labels``) play no part here."""
        if self.manifold is None:
            raise RuntimeError("TriangleScorer.setup(datamodule, device) must run before update()")
        fake = fake[: max(self.quota - self.seen, 0)]
        self.seen += len(fake)
        images = ((fake.detach().float().flatten(0, 1) + 1.0) / 2.0).clamp(0.0, 1.0)
        finite = images.flatten(1).isfinite().all(dim=1)  # a diverged generator's NaN samples are never precise
        with torch.autocast(images.device.type, enabled=False):  # the fit's normal equations need float32
            distance = self.manifold.distance(images.nan_to_num(1.0))
        self.fake_distances.update(torch.where(finite, distance, torch.full_like(distance, math.inf)))

    def compute(self, generator: nn.Module) -> dict[str, float]:
        if self.real is None:
            raise RuntimeError("TriangleScorer.setup(datamodule, device) must run before compute()")
        with torch.autocast(self.real.device.type, enabled=False):
            self.real_distances.update(generator_distance(generator, self.real, **self.invert))
        fake_distances = torch.as_tensor(self.fake_distances.compute())
        real_distances = torch.as_tensor(self.real_distances.compute())
        precision, recall = _share_below(fake_distances, self.delta), _share_below(real_distances, self.delta)
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1_score(precision, recall),
            "manifold_distance": _median(fake_distances),
            "inversion_distance": _median(real_distances),
            **_curves(fake_distances, real_distances, self.curve_deltas),
        }


def f1_score(precision: float, recall: float) -> float:
    """Harmonic mean; 0 when both are 0, NaN when either is undefined (nothing was scored)."""
    if math.isnan(precision) or math.isnan(recall):
        return math.nan
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _share_below(distances: Tensor, delta: float) -> float:
    """Share of ``distances`` below ``delta``; NaN for none (CatMetric gives an empty list before any update)."""
    return (distances < delta).float().mean().item() if distances.numel() else math.nan


def _curves(fake_distances: Tensor, real_distances: Tensor, deltas: Sequence[float]) -> dict[str, float]:
    """P(δ) and R(δ) at each δ, keyed "precision@<δ>" / "recall@<δ>": how much a score owes to the choice of δ."""
    precision = {f"precision@{delta:g}": _share_below(fake_distances, delta) for delta in deltas}
    return precision | {f"recall@{delta:g}": _share_below(real_distances, delta) for delta in deltas}


def _median(distances: Tensor) -> float:
    """The median distance: a continuous signal next to the shares, e.g. while no sample is yet within δ."""
    return distances.median().item() if distances.numel() else math.nan
