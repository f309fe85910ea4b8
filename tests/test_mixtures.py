"""The 2-D mixture data and its metrics, against cases whose answers are known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from ganbench.data.mixtures import MixtureDataModule, grid, ring
from ganbench.metrics.mixture import MixtureScorer, mixture_metrics


def test_ring_and_grid_follow_the_reference_protocol() -> None:
    r = ring()
    assert r.num_modes == 8 and r.std == 0.01
    assert torch.allclose(r.means.norm(dim=1), torch.ones(8))
    assert torch.allclose(r.means[2], torch.tensor([0.0, 1.0]), atol=1e-6)
    g = grid()
    assert g.num_modes == 25 and g.std == 0.05
    assert sorted(set(g.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_samples_are_seeded_and_concentrated() -> None:
    mixture = ring()
    a = mixture.sample(5000, torch.Generator().manual_seed(3))
    b = mixture.sample(5000, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    metrics = mixture_metrics(a, mixture)
    assert metrics["modes"] == 8 and metrics["high_quality"] > 0.98 and metrics["reverse_kl"] < 0.01


def test_datamodule_yields_n_critic_batches_per_step() -> None:
    datamodule = MixtureDataModule("ring", ring(), batch_size=10, seed=1)
    datamodule.batches_per_step = 3
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.shape == (30, 2)
    assert torch.equal(batch, next(iter(datamodule.train_dataloader()))), "same seed, same data"


def test_metrics_on_exact_points() -> None:
    mixture = ring()
    means = mixture.means
    on_means = means.repeat(10, 1)
    assert mixture_metrics(on_means, mixture) == {"modes": 8.0, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0)}

    one_mode = means[:1].repeat(50, 1)
    collapsed = mixture_metrics(one_mode, mixture)
    assert collapsed["modes"] == 1 and collapsed["reverse_kl"] == pytest.approx(math.log(8))

    # two modes, 3:1 — KL(p ‖ U8) = Σ p log(8p)
    two = torch.cat([means[:1].repeat(3, 1), means[1:2]])
    expected = 0.75 * math.log(8 * 0.75) + 0.25 * math.log(8 * 0.25)
    assert mixture_metrics(two, mixture)["reverse_kl"] == pytest.approx(expected)


def test_high_quality_threshold_is_three_sigma() -> None:
    mixture = ring()
    inside = mixture.means[:1] + torch.tensor([[0.0299, 0.0]])
    outside = mixture.means[:1] + torch.tensor([[0.0301, 0.0]])
    assert mixture_metrics(inside, mixture)["high_quality"] == 1.0
    assert mixture_metrics(outside, mixture)["high_quality"] == 0.0


def test_no_high_quality_or_non_finite_samples() -> None:
    mixture = grid()
    far = torch.full((10, 2), 100.0)
    metrics = mixture_metrics(far, mixture)
    assert metrics["modes"] == 0 and metrics["high_quality"] == 0 and math.isnan(metrics["reverse_kl"])
    broken = torch.cat([mixture.means[:2], torch.full((2, 2), math.nan)])
    metrics = mixture_metrics(broken, mixture)
    assert metrics["modes"] == 2 and metrics["high_quality"] == 0.5


def test_scorer_streams_chunks_to_the_same_metrics() -> None:
    datamodule = MixtureDataModule("grid", grid())
    samples = datamodule.mixture.sample(1000, torch.Generator().manual_seed(0))
    scorer = MixtureScorer()
    scorer.setup(datamodule, torch.device("cpu"))
    for _ in range(2):  # a second evaluation starts from a clean state
        scorer.reset()
        for chunk in samples.split(300):
            scorer.update(chunk)
        assert scorer.compute(generator=None) == mixture_metrics(samples, datamodule.mixture)
