"""Budget-aware comparison of losses (Lucic et al. 2018): expected best score after k trials, and the Table 2 summary.

Comparing the single best run of each loss rewards whoever ran more trials; the paper instead compares the
distribution of the best score reachable with a budget of k hyperparameter samples. Failed or diverged runs must
not vanish from that distribution (that would flatter unstable losses), so callers pass them as a worst-case value or
NaN; NaN is treated here as the worst possible score: it never wins a draw unless every score drawn is NaN, and then
that draw's best is NaN. Any positive chance of such a draw makes the expectation NaN too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CURVE_COLUMNS = ["budget", "mean", "lower", "upper"]
TABLE_COLUMNS = ["loss", "best_search", "seeds_mean", "seeds_std", "n_search", "n_seeds", "failed_share"]


def _as_scores(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("no scores given")
    return values


def _worst_filled(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """NaN → the worst value of the ordering (−inf for max, +inf for min), so it loses every comparison."""
    return np.where(np.isnan(values), -np.inf if higher_is_better else np.inf, values)


def _finite_or_nan(value: float) -> float:
    """Infinities only stand for NaN (worst-case) scores here; report them as NaN again."""
    return float(value) if np.isfinite(value) else float("nan")


def expected_best_curve(
    scores: np.ndarray,
    budgets: Sequence[int],
    higher_is_better: bool,
    num_bootstrap: int = 2000,
    interval: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap the best score of k runs drawn with replacement, per budget k: mean and percentile interval.

    NaN scores are the worst possible score (see the module docstring); a budget whose draws can all be NaN gets NaN
    for its mean, and NaN for the interval bounds that fall on such draws.
    """
    values = _worst_filled(_as_scores(scores), higher_is_better)
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval must lie in (0, 1), got {interval}")
    ks = [int(k) for k in budgets]
    if any(k < 1 for k in ks):
        raise ValueError(f"budgets must be positive, got {list(budgets)}")
    if not ks:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    # One shared matrix of draws, read by prefixes: the best of the first k draws of each row is a valid bootstrap
    # draw for budget k, and a running best can only improve, so the curve is monotone by construction rather than
    # jittering with independent Monte Carlo noise per budget.
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, values.size, size=(num_bootstrap, max(ks)))]
    running_best = (np.maximum if higher_is_better else np.minimum).accumulate(draws, axis=1)
    tail = 100.0 * (1.0 - interval) / 2.0
    rows = []
    for k in ks:
        best = running_best[:, k - 1]
        with np.errstate(invalid="ignore"):
            lower, upper = np.percentile(best, [tail, 100.0 - tail])
            mean = best.mean()
        rows.append((k, _finite_or_nan(mean), _finite_or_nan(lower), _finite_or_nan(upper)))
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def expected_best_exact(scores: np.ndarray, k: int, higher_is_better: bool) -> float:
    """Exact expected best of k draws with replacement from the empirical distribution (the bootstrap's oracle).

    With sorted x_(1) ≤ … ≤ x_(n): E[min] = Σ x_(i) [((n−i+1)/n)^k − ((n−i)/n)^k] and
    E[max] = Σ x_(i) [(i/n)^k − ((i−1)/n)^k]. NaN scores are the worst, so any NaN (drawn alone with positive
    probability) makes the expectation NaN.
    """
    values = _as_scores(scores)
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if np.isnan(values).any():
        return float("nan")
    x = np.sort(values)
    n = x.size
    i = np.arange(1, n + 1)
    # P(best = x_(i)): for max, all k draws ≤ x_(i) minus all < x_(i); for min, all ≥ x_(i) minus all > x_(i).
    above, below = ((n - i + 1) / n) ** k - ((n - i) / n) ** k, (i / n) ** k - ((i - 1) / n) ** k
    weights = below if higher_is_better else above
    return float(np.dot(x, weights))


def best_per_loss(runs: pd.DataFrame, metric: str, higher_is_better: bool) -> pd.DataFrame:
    """The paper's Table 2 per loss: best of the wide search, mean ± sample std over the seed re-runs.

    Scores missing from the metric column (failed runs) are skipped by the statistics; failed_share (runs whose status
    is not "completed", over both phases) is reported beside them so the skipped runs stay visible.
    """
    rows = []
    for loss, group in runs.groupby("loss", sort=False):
        search = group.loc[group["phase"] == "search", metric].astype(float)
        seeds = group.loc[group["phase"] == "seeds", metric].astype(float)
        best = search.max() if higher_is_better else search.min()
        rows.append(
            {
                "loss": loss,
                "best_search": float(best) if search.notna().any() else float("nan"),
                "seeds_mean": float(seeds.mean()) if seeds.notna().any() else float("nan"),
                "seeds_std": float(seeds.std(ddof=1)) if seeds.notna().sum() > 1 else float("nan"),
                "n_search": len(search),
                "n_seeds": len(seeds),
                "failed_share": float((group["status"] != "completed").mean()),
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def plot_budget_curves(curves: dict[str, pd.DataFrame], metric: str, title: str, log_x: bool = True) -> Figure:
    """One expected-best curve per loss with its shaded interval, so losses are compared at equal budget."""
    figure = Figure(figsize=(6.4, 4.4))
    ax = figure.add_subplot(1, 1, 1)
    for loss, curve in curves.items():
        (line,) = ax.plot(curve["budget"], curve["mean"], label=loss)
        ax.fill_between(curve["budget"], curve["lower"], curve["upper"], color=line.get_color(), alpha=0.2)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("budget (hyperparameter samples)")
    ax.set_ylabel(f"expected best {metric}")
    ax.set_title(title)
    if curves:
        ax.legend()
    figure.tight_layout()
    return figure
