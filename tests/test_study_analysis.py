"""The budget analysis and Table 2 summary, checked against closed forms and hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ganbench.analysis.study import best_per_loss, expected_best_curve, expected_best_exact, plot_budget_curves

SCORES = np.random.default_rng(7).gamma(shape=2.0, scale=20.0, size=40) + 5.0  # positive, FID-like, skewed
BUDGETS = [1, 2, 5, 10, 30]
NUM_BOOTSTRAP = 4000


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_bootstrap_mean_matches_exact_expectation(higher_is_better: bool) -> None:
    # Fixed default seed: across 200 seeds the z-scores (mean − exact)/SE were ≈ N(0, 1) for both directions, so with
    # ten 3σ checks roughly 3% of seeds would trip one by chance; the test pins one seed rather than loosening 3σ.
    curve = expected_best_curve(SCORES, BUDGETS, higher_is_better, num_bootstrap=NUM_BOOTSTRAP)
    for k, mean in zip(curve["budget"], curve["mean"], strict=True):
        exact = expected_best_exact(SCORES, k, higher_is_better)
        # Scores are positive, so best(x²) = best(x)²: the exact variance of one bootstrap draw's best.
        variance = expected_best_exact(SCORES**2, k, higher_is_better) - exact**2
        standard_error = math.sqrt(max(variance, 0.0) / NUM_BOOTSTRAP)
        assert abs(mean - exact) <= 3 * standard_error + 1e-9, (k, mean, exact)


def test_exact_matches_brute_force_enumeration() -> None:
    scores = np.array([3.0, 1.0, 4.0, 1.0])
    draws = np.array(np.meshgrid(*[scores] * 3)).reshape(3, -1)
    assert expected_best_exact(scores, 3, False) == pytest.approx(draws.min(axis=0).mean())
    assert expected_best_exact(scores, 3, True) == pytest.approx(draws.max(axis=0).mean())


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_budget_one_is_the_sample_mean(higher_is_better: bool) -> None:
    assert expected_best_exact(SCORES, 1, higher_is_better) == pytest.approx(SCORES.mean())
    curve = expected_best_curve(SCORES, [1], higher_is_better, num_bootstrap=NUM_BOOTSTRAP)
    assert curve["mean"].iloc[0] == pytest.approx(SCORES.mean(), rel=0.05)


def test_curve_is_monotone_and_interval_brackets_mean() -> None:
    curve = expected_best_curve(SCORES, list(range(1, 51)), higher_is_better=False)
    assert list(curve.columns) == ["budget", "mean", "lower", "upper"]
    assert (np.diff(curve["mean"]) <= 1e-9).all()
    assert (np.diff(curve["lower"]) <= 1e-9).all() and (np.diff(curve["upper"]) <= 1e-9).all()
    assert (curve["lower"] <= curve["mean"]).all() and (curve["mean"] <= curve["upper"]).all()
    rising = expected_best_curve(SCORES, list(range(1, 51)), higher_is_better=True)
    assert (np.diff(rising["mean"]) >= -1e-9).all()


def test_seeded_curve_is_reproducible() -> None:
    first = expected_best_curve(SCORES, BUDGETS, False, seed=3)
    pd.testing.assert_frame_equal(first, expected_best_curve(SCORES, BUDGETS, False, seed=3))


def test_nan_is_the_worst_score() -> None:
    scores = np.array([10.0, np.nan, 20.0, np.nan])
    # With a large budget a draw of four values is all NaN only with probability (1/2)^k; at k=30 never in practice.
    curve = expected_best_curve(scores, [30], higher_is_better=False)
    assert curve["mean"].iloc[0] == pytest.approx(10.0)
    assert expected_best_curve(scores, [30], higher_is_better=True)["mean"].iloc[0] == pytest.approx(20.0)
    # At k=1 half the draws are NaN: the expectation is NaN, and so is the interval's worst end.
    small = expected_best_curve(scores, [1], higher_is_better=False).iloc[0]
    assert math.isnan(small["mean"]) and math.isnan(small["upper"])
    assert small["lower"] == pytest.approx(10.0)
    assert math.isnan(expected_best_exact(scores, 30, higher_is_better=False))
    all_nan = expected_best_curve(np.full(5, np.nan), [1, 10], higher_is_better=False)
    assert all_nan[["mean", "lower", "upper"]].isna().all().all()


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        expected_best_curve(np.array([]), [1], False)
    with pytest.raises(ValueError):
        expected_best_curve(SCORES, [0], False)
    with pytest.raises(ValueError):
        expected_best_exact(SCORES, 0, False)


def test_best_per_loss_table() -> None:
    runs = pd.DataFrame(
        [
            ("ns", "search", "completed", 30.0),
            ("ns", "search", "completed", 20.0),
            ("ns", "search", "diverged", np.nan),
            ("ns", "seeds", "completed", 21.0),
            ("ns", "seeds", "completed", 23.0),
            ("ns", "seeds", "completed", 25.0),
            ("wgan", "search", "completed", 40.0),
            ("wgan", "search", "failed", np.nan),
            ("lsgan", "seeds", "completed", 12.0),
        ],
        columns=["loss", "phase", "status", "final_fid"],
    )
    table = best_per_loss(runs, "final_fid", higher_is_better=False).set_index("loss")
    assert list(table.reset_index().columns) == [
        "loss",
        "best_search",
        "seeds_mean",
        "seeds_std",
        "n_search",
        "n_seeds",
        "failed_share",
    ]
    ns = table.loc["ns"]
    assert ns["best_search"] == 20.0
    assert ns["seeds_mean"] == pytest.approx(23.0)
    assert ns["seeds_std"] == pytest.approx(2.0)  # sample std of 21, 23, 25
    assert (ns["n_search"], ns["n_seeds"]) == (3, 3)
    assert ns["failed_share"] == pytest.approx(1 / 6)
    wgan = table.loc["wgan"]
    assert wgan["best_search"] == 40.0 and math.isnan(wgan["seeds_mean"]) and math.isnan(wgan["seeds_std"])
    assert (wgan["n_search"], wgan["n_seeds"], wgan["failed_share"]) == (2, 0, 0.5)
    lsgan = table.loc["lsgan"]
    assert math.isnan(lsgan["best_search"]) and lsgan["seeds_mean"] == 12.0 and math.isnan(lsgan["seeds_std"])
    assert best_per_loss(runs, "final_fid", higher_is_better=True).set_index("loss").loc["ns", "best_search"] == 30.0


def test_plot_budget_curves() -> None:
    curves = {
        loss: expected_best_curve(SCORES + offset, BUDGETS, False, num_bootstrap=200)
        for loss, offset in [("ns", 0.0), ("wgan", 5.0), ("lsgan", 10.0)]
    }
    figure = plot_budget_curves(curves, "FID", "FID vs budget")
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert len(ax.get_lines()) == 3
    assert len(ax.collections) == 3  # one shaded interval per loss
    assert ax.get_xlabel() and "FID" in ax.get_ylabel()
    assert ax.get_title() == "FID vs budget" and ax.get_xscale() == "log"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["ns", "wgan", "lsgan"]
