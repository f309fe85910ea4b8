"""Improved precision / recall and density / coverage of generated samples, on feature vectors.

Sources: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models" (k = 3);
Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models" (k = 5).

With N real features xᵢ, M fake features yⱼ, Euclidean distance d, and NNDₖ(xᵢ) the distance from xᵢ to its k-th
nearest neighbour among the other points of its own set, B(x, r) = {z : d(z, x) ≤ r}:

- precision = (1/M) Σⱼ 1[∃ i: yⱼ ∈ B(xᵢ, NNDₖ(xᵢ))]   (fakes on the real manifold)
- recall    = (1/N) Σᵢ 1[∃ j: xᵢ ∈ B(yⱼ, NNDₖ(yⱼ))]   (reals on the fake manifold)
- density   = (1/(kM)) Σⱼ Σᵢ 1[yⱼ ∈ B(xᵢ, NNDₖ(xᵢ))]   (how many real balls hold each fake; 1 on average when the
  sets are the same distribution, unbounded above)
- coverage  = (1/N) Σᵢ 1[∃ j: yⱼ ∈ B(xᵢ, NNDₖ(xᵢ))]   (real balls holding at least one fake)

Ball membership uses ≤, as torch-fidelity does, not the < of the density / coverage authors' code: with exact
duplicates a radius can be 0, and < would then leave the ball empty even of the duplicate itself. An exact duplicate
is another point, so a point with a twin has NNDₖ = 0 for k = 1.

Distances are float64 and come from torch.cdist on blocks of `chunk` rows, so memory stays O(chunk × n) however
many samples there are. Ties are kept exact in two ways. cdist's ‖a‖² + ‖b‖² − 2a·b leaves identical vectors about
1e-8·‖a‖ apart, by an amount that depends on the matrices' shapes, so near-zero distances are recomputed as ‖a − b‖:
identical vectors are exactly 0 apart, wherever they sit. And each ball test puts the ball's centre as the row
operand, as its radius was computed: the matrix-product distances are not exactly symmetric, and a transposed test
can drop a point lying exactly on a ball's boundary (as every k-th neighbour does when real and fake are identical).
"""

from __future__ import annotations

import torch
from torch import Tensor

_NEAR_ZERO = 1e-5
"""Distances up to _NEAR_ZERO·(‖a‖ + ‖b‖) are recomputed exactly; cdist's rounding for identical vectors is ~1e-8."""


def precision_recall(*, real: Tensor, fake: Tensor, k: int = 3, chunk: int = 4096) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): fidelity and diversity as two separate numbers."""
    real, fake = _validated(real=real, fake=fake, k=k, chunk=chunk)
    _, fake_on_real = _ball_hits(real, _kth_nn_radii(real, k, chunk), fake, chunk)
    _, real_on_fake = _ball_hits(fake, _kth_nn_radii(fake, k, chunk), real, chunk)
    return {"precision": fake_on_real.double().mean().item(), "recall": real_on_fake.double().mean().item()}


def density_coverage(*, real: Tensor, fake: Tensor, k: int = 5, chunk: int = 4096) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020): only real-sample balls, so outlying fakes cannot inflate either."""
    real, fake = _validated(real=real, fake=fake, k=k, chunk=chunk)
    fakes_per_ball, _ = _ball_hits(real, _kth_nn_radii(real, k, chunk), fake, chunk)
    return {
        "density": fakes_per_ball.sum().item() / (k * len(fake)),
        "coverage": (fakes_per_ball > 0).double().mean().item(),
    }


def _validated(*, real: Tensor, fake: Tensor, k: int, chunk: int) -> tuple[Tensor, Tensor]:
    """Both sets as float64, after the checks that would otherwise surface as an opaque kthvalue or cdist error."""
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be at least 1, got k = {k}, chunk = {chunk}")
    for name, features in (("real", real), ("fake", fake)):
        if features.dim() != 2:
            raise ValueError(f"{name} features must be 2-D (samples × features), got shape {tuple(features.shape)}")
        if len(features) < k + 1:
            raise ValueError(
                f"{name} has {len(features)} samples, but k = {k} needs at least k + 1 = {k + 1} "
                "(each point and its k nearest neighbours): lower k or give more samples"
            )
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    return real.to(torch.float64), fake.to(torch.float64)


def _kth_nn_radii(points: Tensor, k: int, chunk: int) -> Tensor:
    """NNDₖ of every point: the (k+1)-th smallest distance of its row, which includes itself at distance 0.

    Counting self as the first neighbour (as the reference implementations do) rather than dropping the diagonal
    treats an exact duplicate as a neighbour at distance 0, so a point with a twin gets radius 0 for k = 1."""
    return torch.cat([_distances(rows, points).kthvalue(k + 1, dim=1).values for rows in points.split(chunk)])


def _ball_hits(centres: Tensor, radii: Tensor, points: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """For the balls B(centresᵢ, radiiᵢ): how many points each ball holds, and whether each point is in any ball."""
    counts = []
    in_any = torch.zeros(len(points), dtype=torch.bool, device=points.device)
    for rows, row_radii in zip(centres.split(chunk), radii.split(chunk), strict=True):
        inside = _distances(rows, points) <= row_radii[:, None]
        counts.append(inside.sum(dim=1))
        in_any |= inside.any(dim=0)
    return torch.cat(counts), in_any


def _distances(rows: Tensor, points: Tensor) -> Tensor:
    """torch.cdist(rows, points) with its near-zero entries recomputed as ‖a − b‖, so duplicates are exactly 0 apart.

    The recomputation runs on at most len(rows) pairs at a time, so even a set made of a few repeated points keeps
    memory at O(len(rows) × features) on top of the distance block."""
    distances = torch.cdist(rows, points)
    near = distances <= _NEAR_ZERO * (rows.norm(dim=1)[:, None] + points.norm(dim=1))
    near_rows, near_points = near.nonzero(as_tuple=True)
    for i, j in zip(near_rows.split(len(rows)), near_points.split(len(rows)), strict=True):
        distances[i, j] = (rows[i] - points[j]).norm(dim=1)
    return distances
