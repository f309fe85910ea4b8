"""Exact precision, recall and F1 on the triangles data set (definitions and δ: docs/triangles.md).

Precision: the share of generated samples within L2 distance δ of the triangle manifold — the images the data
generator can make, rendered anti-aliased by exact pixel area. The fit is parametrised by the generator's own four
random numbers, so it can only produce triangles the data set contains (never a degenerate, blank one).
Recall: the share of real test triangles within δ of the generator's range, found by inverting G with gradient
descent on z. Both searches start from the nearest of a fixed bank of candidates (the restarts) and are batched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchmetrics.aggregation import CatMetric

from ganbench.data.images import ImageDataModule
from ganbench.data.triangles import MIN_OFFSET_DEG, RASTER, SCALE, SEGMENT_DEG, SPAN_DEG
from ganbench.nets.base import Generator

# δ: the most permissive threshold, rounded down to 0.05, at which at most 1% of every designated near-miss negative
# set (quadrilaterals, blurred, rounded and overlapping triangles, grey images) is precise and every real hold-out and
# test triangle is (`python scripts/bench_triangles.py delta`, with TriangleManifold's defaults; docs/triangles.md)
DELTA = 0.95
# the thresholds of the P(δ) and R(δ) curves every evaluation records ("precision@1.5"), DELTA among them
CURVE_DELTAS = (0.25, 0.5, 0.75, DELTA, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
LATENT_BOX = {"uniform": 1.0, "normal": 3.0}  # inversion keeps z in [−b, b]^d: U(−1, 1)'s support, N(0, 1)'s ±3σ
# d(angle)/d(rotation draw) ÷ d(angle)/d(vertex draw): (2π² / 180) / (110π / 180)
ROTATION_PER_ANGLE = 2 * math.pi / SPAN_DEG
# Pixel p of the data holds the sub-pixel samples 8p − 3 … 8p + 4, i.e. the area [p − 7/16, p + 9/16) in pixel units;
# the sample grid starts at −1/16, so pixel 0 is cut there. Row and column edges of all pixels:
_EDGES = [-1 / 16, *(p + 9 / 16 for p in range(RASTER))]


def vertices_from_uniforms(uniforms: Tensor) -> Tensor:
    """The data generator's vertices (n, 3, 2), in pixels, from its four U(0, 1) draws — differentiable.

    The rotation (published quirk: at most 2π² / 180 rad) turns every vertex by −θ about the circle's centre once the
    centroid is moved to the image centre, so it only shifts the three vertex angles.
    """
    segments = torch.arange(3, dtype=uniforms.dtype, device=uniforms.device) * SEGMENT_DEG + MIN_OFFSET_DEG
    theta = uniforms[:, 3:] * (2 * math.pi * math.pi / 180.0)
    angles = (segments + uniforms[:, :3] * SPAN_DEG) * (math.pi / 180.0) - theta
    vertices = (SCALE / 2) * torch.stack([angles.cos(), angles.sin()], dim=-1)
    return vertices - vertices.mean(dim=1, keepdim=True) + RASTER / 2


def render(vertices: Tensor) -> Tensor:
    """Triangles (n, 3, 2) → images (n, 28, 28) in [0, 1], dark triangle on light ground, each pixel's exact area.

    By Green's theorem the area of the triangle in the quadrant {x ≤ X, y ≤ Y} is a sum over its edges of the edge's
    signed x-extent (up to X) times the mean of relu(Y − y) along it; the pixel areas are differences of this function
    at the 29 × 29 pixel corners. Exact areas differ from the data's 64-sample counts by the sampling error only.
    """
    edges = torch.tensor(_EDGES, dtype=vertices.dtype, device=vertices.device)
    start, end = vertices, vertices.roll(-1, dims=1)
    (ax, ay), (bx, by) = start.unbind(-1), end.unbind(-1)
    step = end - start
    orientation = torch.sign(step[:, 0, 0] * step[:, 1, 1] - step[:, 0, 1] * step[:, 1, 0])[:, None, None]
    signed_extent = torch.minimum(bx[..., None], edges) - torch.minimum(ax[..., None], edges)  # (n, 3, 29)
    x_lo = torch.minimum(ax, bx)[..., None]
    x_hi = torch.maximum(x_lo, torch.minimum(torch.maximum(ax, bx)[..., None], edges))
    dx = bx - ax
    slope = ((by - ay) / torch.where(dx.abs() > 1e-6, dx, torch.full_like(dx, 1e-6)))[..., None]
    y_lo = ay[..., None] + slope * (x_lo - ax[..., None])
    y_hi = ay[..., None] + slope * (x_hi - ax[..., None])
    y_min = torch.minimum(y_lo, y_hi)[..., None]
    y_span = (y_hi - y_lo).abs()[..., None]  # (n, 3, 29, 1)
    # mean of relu(Y − y) for y uniform on [y_min, y_min + span], written to stay finite as span → 0
    above = edges - y_min  # (n, 3, 29, 29)
    ramp = torch.minimum(above.relu(), y_span)
    mean_relu = ramp * ramp / (2 * y_span + 1e-12) + (above - y_span).relu()
    quadrant = ((orientation * signed_extent)[..., None] * mean_relu).sum(dim=1)  # (n, 29, 29)
    area = quadrant[:, 1:, 1:] - quadrant[:, :-1, 1:] - quadrant[:, 1:, :-1] + quadrant[:, :-1, :-1]
    return 1.0 - area


def render_uniforms(uniforms: Tensor) -> Tensor:
    """Images (n, 784) in [0, 1] of the triangles the data generator makes from ``uniforms`` (n, 4)."""
    return render(vertices_from_uniforms(uniforms)).flatten(1)


def _nearest(images: Tensor, bank: Tensor, k: int) -> Tensor:
    """Indices (n, k) of the k bank images nearest to each image (L2)."""
    d2 = (images * images).sum(1, keepdim=True) - 2 * images @ bank.T + (bank * bank).sum(1)
    return d2.topk(min(k, len(bank)), dim=1, largest=False).indices


@dataclass
class _Fit:
    """Levenberg–Marquardt state of a batch of fits: the generator's draws, their renders, errors and damping."""

    uniforms: Tensor
    images: Tensor
    error: Tensor
    damping: Tensor

    def take(self, index: Tensor) -> _Fit:
        return _Fit(self.uniforms[index], self.images[index], self.error[index], self.damping[index])


class TriangleManifold:
    """Distance from images to the triangle manifold: Levenberg–Marquardt on the data generator's four draws
    (projected onto [0, 1]^4), from the ``restarts`` nearest of a bank of rendered triangles. Every restart gets
    ``screening`` iterations, then only each image's best goes on to ``iterations`` in all.

    LM needs a few forward renders per iteration (forward differences for the 784 × 4 Jacobian) and converges in a
    handful of them; a gradient step with autograd through the renderer costs ~8 forward renders.
    """

    def __init__(
        self,
        bank_size: int = 8192,
        restarts: int = 4,
        screening: int = 3,
        iterations: int = 8,
        chunk_size: int = 256,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.restarts = restarts
        self.screening = screening
        self.iterations = iterations
        self.chunk_size = chunk_size
        rng = torch.Generator().manual_seed(seed)
        self.bank_uniforms = torch.rand(bank_size, 4, generator=rng).to(device)
        self.bank = torch.cat([render_uniforms(chunk) for chunk in self.bank_uniforms.split(1024)])

    def distance(self, images: Tensor) -> Tensor:
        """L2 distance (n,) of images (n, 28, 28) in [0, 1] to the nearest triangle found."""
        targets = images.flatten(1).to(self.bank)
        return torch.cat([self._distance(chunk) for chunk in targets.split(self.chunk_size)])

    def _distance(self, target: Tensor) -> Tensor:
        restarts = min(self.restarts, len(self.bank))
        uniforms = self.bank_uniforms[_nearest(target, self.bank, restarts)].flatten(0, 1)
        images = render_uniforms(uniforms)
        error = ((images - target.repeat_interleave(restarts, dim=0)) ** 2).sum(1)
        fit = _Fit(uniforms, images, error, torch.full_like(error, 1e-2))
        fit = _levenberg_marquardt(fit, target.repeat_interleave(restarts, dim=0), min(self.screening, self.iterations))
        first = torch.arange(len(target), device=target.device) * restarts
        best = first + fit.error.view(len(target), restarts).argmin(dim=1)
        fit = _levenberg_marquardt(fit.take(best), target, max(self.iterations - self.screening, 0))
        return fit.error.sqrt()


def _levenberg_marquardt(fit: _Fit, target: Tensor, iterations: int, step: float = 1e-3) -> _Fit:
    """``iterations`` damped Gauss–Newton steps on ‖render(u) − target‖², u kept in [0, 1]^4; a step is taken only
    when it lowers the error (then the damping falls, else it rises)."""
    eye = torch.eye(3, 4, dtype=fit.uniforms.dtype, device=fit.uniforms.device)
    for _ in range(iterations):
        shifted = render_uniforms((fit.uniforms[:, None] + step * eye).flatten(0, 1)).view(len(target), 3, -1)
        angles = (shifted - fit.images[:, None]) / step  # (m, 3, 784): one column per vertex draw
        # the rotation draw shifts all three angles at once: its column is a fixed combination of the others
        jacobian = torch.cat([angles, -ROTATION_PER_ANGLE * angles.sum(dim=1, keepdim=True)], dim=1)
        normal = jacobian @ jacobian.transpose(1, 2)
        gradient = jacobian @ (fit.images - target)[..., None]
        damped = normal + torch.diag_embed(fit.damping[:, None] * torch.diagonal(normal, dim1=1, dim2=2) + 1e-6)
        uniforms = (fit.uniforms - torch.linalg.solve(damped, gradient)[..., 0]).clamp(0.0, 1.0)
        images = render_uniforms(uniforms)
        error = ((images - target) ** 2).sum(1)
        better = error < fit.error
        fit = _Fit(
            torch.where(better[:, None], uniforms, fit.uniforms),
            torch.where(better[:, None], images, fit.images),
            torch.where(better, error, fit.error),
            torch.where(better, fit.damping / 3, fit.damping * 4),
        )
    return fit


def generator_distance(
    generator: Generator,
    images: Tensor,
    bank_size: int = 4096,
    restarts: int = 2,
    steps: int = 50,
    lr: float = 0.05,
    chunk_size: int = 250,
    seed: int = 0,
) -> Tensor:
    """L2 distance (n,) of images (n, 28, 28) in [0, 1] to the range of ``generator`` (outputs in [−1, 1]).

    Adam on z from the ``restarts`` nearest of ``bank_size`` fixed latents, z projected onto the latent's box after
    every step; the best distance seen counts. Only z gets gradients: G's parameters and BN statistics are untouched.
    """
    device = next(generator.parameters()).device
    box = LATENT_BOX[generator.latent_distribution]
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        bank_z = generator.sample_latent(bank_size, torch.device("cpu"), torch.Generator().manual_seed(seed))
        bank_z = bank_z.clamp(-box, box).to(device)
        bank = torch.cat([_generated(generator, chunk) for chunk in bank_z.split(512)])
    targets = images.flatten(1).to(bank)
    distances = [
        _invert(generator, target, bank_z[_nearest(target, bank, restarts)].flatten(0, 1), box, steps, lr)
        for target in targets.split(chunk_size)
    ]
    generator.train(was_training)
    return torch.cat(distances)


def _generated(generator: Generator, z: Tensor) -> Tensor:
    return ((generator(z).float() + 1.0) / 2.0).clamp(0.0, 1.0).flatten(1)


def _invert(generator: Generator, target: Tensor, z: Tensor, box: float, steps: int, lr: float) -> Tensor:
    """Best distance (n,) over ``steps`` Adam steps on z (n · restarts, latent_dim), restarts of a target adjacent."""
    restarts = len(z) // len(target)
    target = target.repeat_interleave(restarts, dim=0)
    best = torch.full((len(z),), math.inf, device=z.device)
    z = z.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps + 1):
            error = ((_generated(generator, z) - target) ** 2).sum(1)
            best = torch.fmin(best, error.detach())  # NaN outputs (a diverged G) leave it at inf
            # a collapsed G may ignore z entirely: then z gets zero gradients
            (z.grad,) = torch.autograd.grad(error.sum(), z, allow_unused=True, materialize_grads=True)
            optimizer.step()
            with torch.no_grad():
                z.clamp_(-box, box)
    return best.view(-1, restarts).min(dim=1).values.sqrt()


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

    def setup(self, datamodule: ImageDataModule, device: torch.device) -> None:
        self.reference_id = datamodule.reference_id(self.real_split)
        rank, world_size = _rank_and_world_size()
        self.real = stack_images(datamodule.eval_dataset(self.real_split), self.num_real)[rank::world_size].to(device)
        self.quota = math.ceil(self.num_fake / world_size)
        self.manifold = TriangleManifold(device=device, **self.fit)
        self.fake_distances.to(device)
        self.real_distances.to(device)

    def reset(self) -> None:
        self.fake_distances.reset()
        self.real_distances.reset()
        self.seen = 0

    def update(self, fake: Tensor) -> None:
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


def _rank_and_world_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
