"""Budget-aware comparison of losses (Lucic et al. 2018): expected best score after k trials, and the Table 2 summary.

Comparing the single best run of each loss rewards whoever ran more trials; the paper instead compares the
distribution of the best score reachable with a budget of k hyperparameter samples. Failed or diverged runs must
not vanish from that distribution (that would flatter unstable losses), so callers pass them as a worst-case value or
NaN; NaN is treated here as the worst possible score: it never wins a draw unless every score drawn is NaN, and then
that draw's best is NaN. Any positive chance of such a draw makes the expectation NaN too.

The functions on a table of runs (``load_runs``) read a study's phases: the search (wide, or narrow when a study ran
only that) and the seeds phase, and score every run by its search objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

SEARCH_PHASES = ("wide", "narrow")
SEEDS_PHASE = "seeds"
CURVE_COLUMNS = ["budget", "mean", "lower", "upper"]
TABLE_COLUMNS = [
    "loss",
    "best_search",
    "seeds_mean",
    "seeds_std",
    "n_search",
    "n_seeds",
    "diverged_share",
    "failed_share",
    "flagged_share",
]


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


def search_phase_of(runs: pd.DataFrame) -> str | None:
    """The phase whose runs stand for the search: wide, as in the paper, or narrow for a study that ran only that."""
    phases = set(runs["phase"]) if "phase" in runs else set()
    return next((phase for phase in SEARCH_PHASES if phase in phases), None)


def _scores(runs: pd.DataFrame) -> pd.Series:
    return runs["objective"].astype(float)


def _losses_in_order(*groups: pd.DataFrame) -> list[str]:
    """Losses in the order their runs first appear, search phase first, so every table lists them alike."""
    return list(dict.fromkeys(loss for group in groups for loss in group["loss"]))


def _share(statuses: pd.Series, status: str) -> float:
    return float((statuses == status).mean()) if len(statuses) else np.nan


def _flagged_share(runs: pd.DataFrame) -> float:
    """Share of the runs whose final evaluation the diagnostics flag (collapsed or off the data; ganbench.diagnostics)
    — runs that learned nothing."""
    if not len(runs):
        return np.nan
    return float((runs["warnings"].fillna("") != "").mean()) if "warnings" in runs else 0.0


def best_per_loss(runs: pd.DataFrame, higher_is_better: bool, search_phase: str = "wide") -> pd.DataFrame:
    """The paper's Table 2 per loss: best objective of the search phase, mean ± sample std over the seeds phase.

    The objective already scores diverged and failed runs with the protocol's worst value, so they count against
    their loss; a missing (NaN) objective is skipped. diverged_share and failed_share (of the loss's search runs) keep
    the instability visible beside the best score, which hides it; flagged_share the runs that learned nothing.
    """
    search_runs = runs[runs["phase"] == search_phase]
    seeds_runs = runs[runs["phase"] == SEEDS_PHASE]
    rows = []
    for loss in _losses_in_order(search_runs, seeds_runs):
        search = search_runs[search_runs["loss"] == loss]
        scores = _scores(search).dropna()
        seeds = _scores(seeds_runs[seeds_runs["loss"] == loss]).dropna()
        rows.append(
            {
                "loss": loss,
                "best_search": float(scores.max() if higher_is_better else scores.min()) if len(scores) else np.nan,
                "seeds_mean": float(seeds.mean()) if len(seeds) else np.nan,
                "seeds_std": float(seeds.std(ddof=1)) if len(seeds) > 1 else np.nan,
                "n_search": len(search),
                "n_seeds": int((seeds_runs["loss"] == loss).sum()),
                "diverged_share": _share(search["status"], "diverged"),
                "failed_share": _share(search["status"], "failed"),
                "flagged_share": _flagged_share(search),
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def best_search_runs(runs: pd.DataFrame, higher_is_better: bool, search_phase: str = "wide") -> pd.DataFrame:
    """Each loss's best run of the search phase (its row of ``runs``, indexed by loss): the setting the seeds phase
    trains again. Ties in the objective go to the protocol's tie-breakers (e.g. the high-quality share when several
    runs capture all modes), then to the run listed first; a loss whose objectives are all missing has no best run."""
    search = runs[(runs["phase"] == search_phase) & runs["objective"].notna()]
    tie_breakers = next((names for names in search.get("tie_breakers", []) if names), ())
    keys = ["objective", *(f"best_{name}" for name in tie_breakers if f"best_{name}" in search)]
    ranked = search.astype({key: float for key in keys}).sort_values(
        keys, ascending=not higher_is_better, kind="stable", na_position="last"
    )
    return search.loc[ranked.index].drop_duplicates("loss").set_index("loss").loc[_losses_in_order(search)]


def budget_curves(
    runs: pd.DataFrame, higher_is_better: bool, search_phase: str = "wide", num_bootstrap: int = 2000, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Expected best objective after k = 1..N search trials per loss, N the fewest trials any loss ran: beyond it a
    loss with fewer trials would be extrapolated. NaN objectives stay in as the worst score."""
    search = runs[runs["phase"] == search_phase]
    per_loss = {loss: _scores(search[search["loss"] == loss]).to_numpy() for loss in _losses_in_order(search)}
    if not per_loss:
        return {}
    budgets = range(1, min(len(scores) for scores in per_loss.values()) + 1)
    return {
        loss: expected_best_curve(scores, budgets, higher_is_better, num_bootstrap=num_bootstrap, seed=seed)
        for loss, scores in per_loss.items()
    }


def better_label(higher_is_better: bool) -> str:
    """Said on every axis and table of a score, since FID falls and F1 rises as a loss gets better."""
    return "higher is better" if higher_is_better else "lower is better"


def plot_search_scores(
    runs: pd.DataFrame, metric: str, higher_is_better: bool, title: str, search_phase: str = "wide"
) -> Figure:
    """Box plot of the search objective per loss, each run a dot. Diverged and failed runs are left out of the boxes
    (their worst-case score, e.g. FID 31337, would squash the axis) and counted under the loss's name instead."""
    search = runs[runs["phase"] == search_phase]
    losses = _losses_in_order(search)
    completed = [
        _scores(search[(search["loss"] == loss) & (search["status"] == "completed")]).dropna() for loss in losses
    ]
    figure = Figure(figsize=(max(4.8, 1.3 * len(losses) + 2.0), 4.4))
    ax = figure.add_subplot(1, 1, 1)
    positions = np.arange(1, len(losses) + 1)
    ax.boxplot([scores.to_numpy() for scores in completed], positions=positions, widths=0.5, showfliers=False)
    jitter = np.random.default_rng(0)
    for position, scores in zip(positions, completed, strict=True):
        x = position + jitter.uniform(-0.12, 0.12, size=len(scores))
        ax.scatter(x, scores, s=12, alpha=0.6, color="tab:blue", zorder=3)
    labels = []
    for loss, scores in zip(losses, completed, strict=True):
        n = int((search["loss"] == loss).sum())
        labels.append(f"{loss}\nn={n}" + (f"\n({n - len(scores)} not plotted)" if n > len(scores) else ""))
    ax.set_xticks(positions, labels)
    ax.set_xlabel("loss (n search runs; diverged, failed and unscored ones not plotted)")
    ax.set_ylabel(f"best {metric} of the run ({better_label(higher_is_better)})")
    ax.set_title(title)
    figure.tight_layout()
    return figure


def loss_colours(count: int) -> list[Any]:
    """One colour per loss: matplotlib's 10-colour cycle, or beyond 10 losses tab20's dark hues, then its light ones
    (the cycle would repeat: the 11th loss would share the 1st's colour)."""
    if count <= 10:
        return [f"C{index}" for index in range(count)]
    return [colormaps["tab20"](2 * index % 20 + index // 10 % 2) for index in range(count)]


PRECISION_RECALL = (("ipr_precision", "ipr_recall"), ("precision", "recall"))
"""The metric pairs a precision-against-recall plot is drawn for: the image protocol's improved precision and recall,
the triangles protocol's exact ones."""


def precision_recall_points(runs: pd.DataFrame, search_phase: str = "wide") -> pd.DataFrame | None:
    """Each search run's precision and recall at its best evaluation, for the first pair of ``PRECISION_RECALL`` the
    runs recorded; None when they recorded neither."""
    for precision, recall in PRECISION_RECALL:
        columns = [f"best_{precision}", f"best_{recall}"]
        if not set(columns) <= set(runs.columns):
            continue
        search = runs[(runs["phase"] == search_phase) & runs[columns].notna().all(axis=1)]
        if len(search):
            return search[["run", "loss", *columns]].rename(
                columns=dict(zip(columns, (precision, recall), strict=True))
            )
    return None


def plot_precision_recall(points: pd.DataFrame, title: str) -> Figure:
    """Precision against recall, one dot per search run, one colour per loss: a loss that trades diversity for
    quality sits high and left, whatever its FID."""
    precision, recall = points.columns[2], points.columns[3]
    figure = Figure(figsize=(5.6, 4.8))
    ax = figure.add_subplot(1, 1, 1)
    losses = list(dict.fromkeys(points["loss"]))
    for loss, colour in zip(losses, loss_colours(len(losses)), strict=True):
        mine = points[points["loss"] == loss]
        ax.scatter(mine[recall].astype(float), mine[precision].astype(float), s=24, color=colour, label=loss)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"{recall} (diversity)")
    ax.set_ylabel(f"{precision} (quality)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=2 if len(losses) > 6 else 1)
    figure.tight_layout()
    return figure


def plot_budget_curves(
    curves: dict[str, pd.DataFrame],
    metric: str,
    title: str,
    log_x: bool = True,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """One expected-best curve per loss with its shaded interval, so losses are compared at equal budget.

    ``ylim`` keeps the axis on the scores that matter when worst-case scores (FID 31337) would squash it; a curve may
    then enter from beyond the axis at small budgets. Short curves get markers, so a single budget still shows. Every
    loss has its own colour (``loss_colours``; beyond 20 losses the lines are dashed), and the intervals fade as
    curves are added, so that a dozen losses stay readable."""
    figure = Figure(figsize=(6.4, 4.4))
    ax = figure.add_subplot(1, 1, 1)
    shade = 0.2 if len(curves) <= 5 else 0.08
    for index, ((loss, curve), colour) in enumerate(zip(curves.items(), loss_colours(len(curves)), strict=True)):
        style = "-" if index < 20 else "--"
        marker = "o" if len(curve) <= 10 else None
        ax.plot(curve["budget"], curve["mean"], style, label=loss, color=colour, marker=marker, markersize=4)
        ax.fill_between(curve["budget"], curve["lower"], curve["upper"], color=colour, alpha=shade)
    if log_x:
        ax.set_xscale("log")
    elif curves:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # a budget is a whole number of trials
        ax.set_xlim(0.5, max(curve["budget"].max() for curve in curves.values()) + 0.5)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("budget (hyperparameter samples)")
    ax.set_ylabel(f"expected best {metric}")
    ax.set_title(title)
    if curves:
        ax.legend(fontsize="small", ncols=2 if len(curves) > 6 else 1)
    figure.tight_layout()
    return figure
