"""Improved precision / recall and density / coverage: hand-computed cases, ties, chunking, torch-fidelity agreement."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from ganbench.metrics.prdc import density_coverage, precision_recall


def points(*coordinates: float | tuple[float, ...]) -> Tensor:
    """A (n, d) feature tensor from scalars (1-D points) or tuples (d-D points)."""
    return torch.tensor([c if isinstance(c, tuple) else (c,) for c in coordinates], dtype=torch.float64)


def gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def prdc(real: Tensor, fake: Tensor, k: int, chunk: int = 4096) -> dict[str, float]:
    return precision_recall(real=real, fake=fake, k=k, chunk=chunk) | density_coverage(
        real=real, fake=fake, k=k, chunk=chunk
    )


def test_line_with_an_outlying_fake() -> None:
    # real = {0, 1, 2, 3}, fake = {0.5, 10}, k = 1.
    # Real radii (nearest other real): 1, 1, 1, 1.  Fake radii (nearest other fake): 9.5, 9.5.
    # precision: 0.5 is 0.5 from 0 (≤ 1: in); 10 is 7 from 3 (> 1: out)                      → 1/2
    # recall: the ball of 0.5 with radius 9.5 spans [−9, 10] and holds every real            → 4/4
    # density: 0.5 is in the balls of 0 and 1 (0.5 each; 2 is 1.5 away), 10 in none       → 2 / (1·2) = 1
    # coverage: reals 0 and 1 have a fake within 1 (0.5), 2 and 3 not (1.5, 2.5)            → 2/4
    real, fake = points(0, 1, 2, 3), points(0.5, 10)
    assert prdc(real, fake, k=1) == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5}


def test_line_with_clustered_fakes() -> None:
    # real = {0, 1, 2, 3}, fake = {0, 0.25, 2.9, 3}, k = 1.
    # Real radii: 1, 1, 1, 1.  Fake radii: 0.25, 0.25, 0.1, 0.1.
    # precision: every fake is within 1 of a real                                            → 4/4
    # recall: 0 (0 from fake 0) and 3 (0 from fake 3) are in; 1 is 0.75 from 0.25 (> 0.25)
    #         and 2 is 0.9 from 2.9 (> 0.1): out                                             → 2/4
    # density: fake 0 in the balls of 0, 1 (distance 1 = radius: ≤ counts); 0.25 in 0, 1;
    #          2.9 in 2, 3; 3 in 2 (1 = radius), 3 — 8 memberships                         → 8 / (1·4) = 2
    # coverage: the nearest fakes are 0, 0.75, 0.9, 0 away, all ≤ 1                          → 4/4
    real, fake = points(0, 1, 2, 3), points(0, 0.25, 2.9, 3)
    assert prdc(real, fake, k=1) == {"precision": 1.0, "recall": 0.5, "density": 2.0, "coverage": 1.0}


def test_square_with_k_2_and_a_fake_on_a_ball_boundary() -> None:
    # real = the unit square's corners, fake = a (0.5, 0.5), b (2, 0), c (5, 5), k = 2.
    # Real radii (2nd nearest other corner, of 1, 1, √2): 1 each.
    # Fake radii (2nd nearest of the two others): a max(√2.5, √40.5) = √40.5, b max(√2.5, √34) = √34, c √40.5.
    # precision: a is √0.5 from every corner (in); b is exactly 1 from (1, 0) (≤: in); c is √32 away (out) → 2/3
    # recall: a's ball (radius √40.5 ≈ 6.4) holds every corner                              → 4/4
    # density: a is in all 4 balls, b in the ball of (1, 0) only, c in none                 → 5 / (2·3) = 5/6
    # coverage: every corner's ball holds a                                                   → 4/4
    real, fake = points((0, 0), (1, 0), (0, 1), (1, 1)), points((0.5, 0.5), (2, 0), (5, 5))
    result = prdc(real, fake, k=2)
    assert result == {"precision": 2 / 3, "recall": 1.0, "density": pytest.approx(5 / 6, abs=1e-15), "coverage": 1.0}


def test_identical_sets() -> None:
    # real = fake = {0, 1, 2, 3}, k = 1: radii 1, 1, 1, 1 in both sets; every fake is 0 from its twin, so
    # precision = recall = coverage = 1. Density counts ties: the balls of 0 and 3 hold 2 points each, those of 1
    # and 2 hold 3 each (both neighbours are exactly 1 away)                                   → 10 / (1·4) = 2.5
    line = points(0, 1, 2, 3)
    assert prdc(line, line.clone(), k=1) == {"precision": 1.0, "recall": 1.0, "density": 2.5, "coverage": 1.0}


@pytest.mark.parametrize(("n", "d", "chunk"), [(20, 5, 4096), (300, 64, 4096), (300, 64, 7)])
def test_identical_sets_in_general_position(n: int, d: int, chunk: int) -> None:
    # Without ties each real ball holds exactly its centre and its k nearest neighbours, so with fake = real
    # density = N(k + 1) / (kN) = (k + 1)/k = 1.2 for k = 5. Above 25 rows cdist switches to matrix products, whose
    # distances are not exactly symmetric: the k-th neighbour on the boundary must still count.
    real = gaussian(n, d, seed=0)
    result = prdc(real, real.clone(), k=5, chunk=chunk)
    assert result == {"precision": 1.0, "recall": 1.0, "density": pytest.approx(1.2, abs=1e-15), "coverage": 1.0}


def test_duplicated_reals_have_radius_zero_and_still_hold_their_twin() -> None:
    # real = {0, 0, 5, 5}, k = 1: each real's nearest other real is its duplicate, radius 0. fake = {0, 5}.
    # precision: each fake is 0 from a real, and 0 ≤ 0                        → 1 (a strict < would give 0)
    # recall: fake radii are 5 and 5, and every real is 0 from a fake        → 1
    # density: each fake is in the balls of both copies of its point         → 4 / (1·2) = 2
    # coverage: every real ball holds a fake                                  → 1
    real, fake = points(0, 0, 5, 5), points(0, 5)
    assert prdc(real, fake, k=1) == {"precision": 1.0, "recall": 1.0, "density": 2.0, "coverage": 1.0}


@pytest.mark.parametrize("d", [3, 64, 2048])
def test_duplicates_across_sets_of_different_sizes_are_exact_ties(d: int) -> None:
    # The same as above in the matrix-product regime (60 × d real rows, 30 fake rows): cdist leaves identical
    # vectors ~1e-8·‖x‖ apart, by an amount that depends on the matrix shapes, so without recomputing near-zero
    # distances a fake could land just outside its twin's radius-"0" ball.
    fake = gaussian(30, d, seed=1)
    real = torch.cat([fake, fake])
    for chunk in (1, 7, 4096):
        assert prdc(real, fake, k=1, chunk=chunk) == {"precision": 1.0, "recall": 1.0, "density": 2.0, "coverage": 1.0}
        assert precision_recall(real=fake, fake=real, k=1, chunk=chunk) == {"precision": 1.0, "recall": 1.0}


def test_far_apart_sets_score_zero() -> None:
    real, fake = gaussian(20, 3, seed=0), gaussian(20, 3, seed=1, shift=1000.0)
    assert prdc(real, fake, k=3) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_chunking_does_not_change_the_result() -> None:
    real, fake = gaussian(300, 16, seed=0), gaussian(250, 16, seed=1, shift=0.3)
    whole = prdc(real, fake, k=3)
    assert min(whole.values()) > 0 and max(whole["precision"], whole["recall"], whole["coverage"]) < 1
    assert prdc(real, fake, k=3, chunk=1) == whole
    assert prdc(real, fake, k=3, chunk=7) == whole


def test_float32_input_is_computed_in_float64() -> None:
    real, fake = gaussian(100, 8, seed=0), gaussian(80, 8, seed=1, shift=0.5)
    assert real.dtype == torch.float32
    assert prdc(real, fake, k=3) == prdc(real.double(), fake.double(), k=3)


def reference_prdc(real: Tensor, fake: Tensor, k: int) -> dict[str, float]:
    """The definitions on full distance matrices, from scipy's direct formula: an independent check."""
    spatial = pytest.importorskip("scipy.spatial")
    real_real, fake_fake, real_fake = (
        torch.from_numpy(spatial.distance.cdist(a.numpy(), b.numpy()))
        for a, b in ((real, real), (fake, fake), (real, fake))
    )
    real_radii = real_real.sort(dim=1).values[:, k]  # column 0 is the point itself
    fake_radii = fake_fake.sort(dim=1).values[:, k]
    in_real_balls = real_fake <= real_radii[:, None]  # (real i, fake j): fake j in the ball of real i
    return {
        "precision": in_real_balls.any(dim=0).double().mean().item(),
        "recall": (real_fake <= fake_radii[None, :]).any(dim=1).double().mean().item(),
        "density": in_real_balls.sum().item() / (k * len(fake)),
        "coverage": in_real_balls.any(dim=1).double().mean().item(),
    }


@pytest.mark.parametrize("k", [1, 3, 5])
def test_agrees_with_full_matrix_reference(k: int) -> None:
    real, fake = gaussian(200, 64, seed=0).double(), gaussian(150, 64, seed=1, shift=0.15).double()
    ours, reference = prdc(real, fake, k=k, chunk=64), reference_prdc(real, fake, k=k)
    assert ours == pytest.approx(reference, abs=1e-12)
    assert min(ours.values()) > 0 and max(ours["precision"], ours["recall"], ours["coverage"]) < 1


@pytest.mark.parametrize("save_cpu_ram", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_agrees_with_torch_fidelity(k: int, save_cpu_ram: bool) -> None:
    # torch-fidelity's prc_features_to_metric(features_1, features_2): features_1 is GENERATED, features_2 REAL;
    # radius = kthvalue(neighborhood + 1) of the row including self, membership by ≤ — the same conventions.
    metric_prc = pytest.importorskip("torch_fidelity.metric_prc")
    real, fake = gaussian(200, 64, seed=0).double(), gaussian(150, 64, seed=1, shift=0.15).double()
    theirs = metric_prc.prc_features_to_metric(
        fake, real, prc_neighborhood=k, prc_batch_size=64, save_cpu_ram=save_cpu_ram, verbose=False
    )
    ours = precision_recall(real=real, fake=fake, k=k)
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1
    assert ours == pytest.approx({"precision": theirs["precision"], "recall": theirs["recall"]}, abs=1e-6)


@pytest.mark.parametrize("metric", [precision_recall, density_coverage])
def test_too_few_samples(metric: Callable[..., dict[str, float]]) -> None:
    with pytest.raises(ValueError, match=r"real has 3 samples, but k = 3 needs at least k \+ 1 = 4.*lower k or give"):
        metric(real=gaussian(3, 2, seed=0), fake=gaussian(10, 2, seed=1), k=3)
    with pytest.raises(ValueError, match=r"fake has 2 samples, but k = 2 needs at least k \+ 1 = 3"):
        metric(real=gaussian(10, 2, seed=0), fake=gaussian(2, 2, seed=1), k=2)


@pytest.mark.parametrize("metric", [precision_recall, density_coverage])
def test_malformed_input(metric: Callable[..., dict[str, float]]) -> None:
    with pytest.raises(ValueError, match=r"feature dimensions differ: 2 vs 3"):
        metric(real=gaussian(10, 2, seed=0), fake=gaussian(10, 3, seed=1))
    with pytest.raises(ValueError, match=r"fake features must be 2-D .* got shape \(10,\)"):
        metric(real=gaussian(10, 2, seed=0), fake=torch.zeros(10))
    with pytest.raises(ValueError, match=r"k and chunk must be at least 1, got k = 0"):
        metric(real=gaussian(10, 2, seed=0), fake=gaussian(10, 2, seed=1), k=0)
    with pytest.raises(ValueError, match=r"chunk = 0"):
        metric(real=gaussian(10, 2, seed=0), fake=gaussian(10, 2, seed=1), chunk=0)
    with pytest.raises(TypeError):
        metric(gaussian(10, 2, seed=0), gaussian(10, 2, seed=1))  # keyword-only: which set is real is explicit
