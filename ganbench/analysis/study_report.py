"""The report of a study (Lucic et al. 2018): per dataset, Table 2, the search scores per loss, the expected best score
against the budget, the protocol's metrics at the best setting and over the seeds, and the seeds-phase commands.

Written as ``study.md`` (every table, the figures linked) with a CSV per table and a PNG per figure, all prefixed with
the dataset's name, so a study folder that holds several datasets gets one section per dataset.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ganbench.analysis.runs import load_runs
from ganbench.analysis.study import (
    SEARCH_PHASES,
    SEEDS_PHASE,
    best_per_loss,
    best_search_runs,
    better_label,
    budget_curves,
    plot_budget_curves,
    plot_precision_recall,
    plot_search_scores,
    precision_recall_points,
    search_phase_of,
)
from ganbench.diagnostics import is_headline

STUDY_PHASES = (*SEARCH_PHASES, SEEDS_PHASE)
DEFAULT_SEEDS = 50
STUDY_MARKDOWN = "study.md"
_DROPPED_OVERRIDE = re.compile(r"^(search(\..*)?|seed)=")
_CURVE_METRICS = ("precision", "recall")
_CURVE_COLUMN = re.compile(r"^best_(precision|recall)@(.+)$")  # the triangle scorer's P(δ), R(δ): "precision@1.5"


@dataclass
class StudySection:
    """The report of one dataset of a study: its tables and curves, and the files written for it."""

    dataset: str
    metric: str
    higher_is_better: bool
    search_phase: str | None
    table: pd.DataFrame
    metrics: pd.DataFrame
    per_metric: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    commands: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    delta: float | None = None  # the protocol's distance threshold, where it has one (triangles)


def is_study(runs: pd.DataFrame) -> bool:
    """Whether any run belongs to a study phase (a plain sweep's runs are in phase "run")."""
    return "phase" in runs and bool(runs["phase"].isin(STUDY_PHASES).any())


def markdown_table(table: pd.DataFrame) -> str:
    """Markdown with 4 significant digits and a dash for missing values (tabulate prints None, not NaN, as such)."""
    shown = table.astype(object).where(table.notna(), None)
    return shown.to_markdown(index=False, floatfmt=".4g", missingval="—")


def seeds_command(overrides: Sequence[str], num_seeds: int = DEFAULT_SEEDS) -> str:
    """The shell command that trains a search run's setting again with seeds 1..num_seeds: its overrides without the
    search preset, the search's own settings and the seed, then the seeds preset and the seed sweep."""
    kept = [override for override in overrides if not _DROPPED_OVERRIDE.match(override)]
    arguments = [*kept, "search=seeds", f"seed=range(1,{num_seeds + 1})"]
    return " ".join(["ganbench-train", "-m", *(shlex.quote(argument) for argument in arguments)])


def seeds_commands(
    runs: pd.DataFrame, higher_is_better: bool, search_phase: str = "wide", num_seeds: int = DEFAULT_SEEDS
) -> dict[str, str]:
    """Per loss, the seeds-phase command for its best search run."""
    best = best_search_runs(runs, higher_is_better, search_phase)
    return {loss: seeds_command(run["overrides"], num_seeds) for loss, run in best.iterrows()}


def metric_names(runs: pd.DataFrame, primary: str) -> list[str]:
    """The protocol's metrics recorded for these runs (``best_<metric>`` columns with a value), primary first; the
    threshold curves ("precision@1.5") have their own figure, the diagnostics their column in the run table."""
    names = [c.removeprefix("best_") for c in runs.columns if c.startswith("best_")]
    names = [name for name in names if is_headline(name, primary)]
    present = [name for name in names if runs[f"best_{name}"].notna().any()]
    return sorted(present, key=lambda name: name != primary)


def protocol_metrics(
    runs: pd.DataFrame, metrics: Sequence[str], higher_is_better: bool, search_phase: str = "wide"
) -> pd.DataFrame:
    """Per loss: the best evaluation's metrics of its best search run (``search_<m>``), and their mean over the seeds
    phase (``seeds_<m>``, missing values skipped), so the primary score is read beside precision, recall, quality."""
    columns = [f"best_{m}" for m in metrics]
    best = best_search_runs(runs, higher_is_better, search_phase)
    seeds = runs[runs["phase"] == SEEDS_PHASE]
    losses = list(dict.fromkeys([*best.index, *seeds["loss"]]))
    at_best = best[columns].astype(float).reindex(losses)  # NaN for a loss with seed runs only
    rows = []
    for loss in losses:
        seeds_mean = seeds.loc[seeds["loss"] == loss, columns].astype(float).mean()
        row = {"loss": loss, "best_run": best["run"].get(loss)}
        row |= {f"search_{m}": at_best.loc[loss, f"best_{m}"] for m in metrics}
        rows.append(row | {f"seeds_{m}": seeds_mean[f"best_{m}"] for m in metrics})
    columns = ["loss", "best_run", *(f"search_{m}" for m in metrics), *(f"seeds_{m}" for m in metrics)]
    return pd.DataFrame(rows, columns=columns)


LOWER_IS_BETTER = ("fid", "kid", "intra_fid", "fd_", "kd_", "intra_fd_", "reverse_kl", "mean_gap")
"""Metrics (or prefixes of metrics) that fall as a generator gets better; every other headline metric rises."""


def lower_is_better(metric: str) -> bool:
    return any(metric == name or (name.endswith("_") and metric.startswith(name)) for name in LOWER_IS_BETTER)


def best_of_each_metric(runs: pd.DataFrame, metrics: Sequence[str], search_phase: str = "wide") -> pd.DataFrame:
    """Table 2 for every metric: per loss, each metric's own best over the search runs' best evaluations (a loss
    may reach its best precision and its best FID in different runs)."""
    search = runs[runs["phase"] == search_phase]
    rows = []
    for loss in dict.fromkeys(search["loss"]):
        mine = search[search["loss"] == loss]
        row: dict[str, Any] = {"loss": loss}
        for metric in metrics:
            values = mine[f"best_{metric}"].astype(float)
            row[metric] = values.min() if lower_is_better(metric) else values.max()
        rows.append(row)
    return pd.DataFrame(rows, columns=["loss", *metrics])


def _primary(runs: pd.DataFrame) -> tuple[str, bool]:
    """The dataset's primary metric and direction, from runs that reached evaluation (a run that failed before it
    records no metric, and the record's default direction); the objective alone when none did."""
    evaluated = runs[runs["primary_metric"].notna()]
    source = evaluated if len(evaluated) else runs
    metric = evaluated["primary_metric"].iloc[0] if len(evaluated) else "objective"
    return str(metric), bool(source["higher_is_better"].iloc[0])


def study_section(
    runs: pd.DataFrame, num_seeds: int = DEFAULT_SEEDS, num_bootstrap: int = 2000, seed: int = 0
) -> StudySection:
    """The tables, budget curves and seeds commands of one dataset's study runs (no files written)."""
    metric, higher_is_better = _primary(runs)
    phase = search_phase_of(runs)
    search = phase or SEARCH_PHASES[0]  # a study with seeds only: every search result below comes out empty
    return StudySection(
        dataset=str(runs["dataset"].iloc[0]),
        metric=metric,
        higher_is_better=higher_is_better,
        search_phase=phase,
        table=best_per_loss(runs, higher_is_better, search),
        metrics=protocol_metrics(runs, metric_names(runs, metric), higher_is_better, search),
        per_metric=best_of_each_metric(runs, metric_names(runs, metric), search),
        curves=budget_curves(runs, higher_is_better, search, num_bootstrap, seed),
        commands=seeds_commands(runs, higher_is_better, search, num_seeds),
    )


def study_sections(runs: pd.DataFrame, num_seeds: int = DEFAULT_SEEDS) -> list[StudySection]:
    """One section per dataset of the runs in a study phase (other runs, e.g. plain ones, are left out)."""
    studied = runs[runs["phase"].isin(STUDY_PHASES)]
    return [study_section(group, num_seeds) for _, group in studied.groupby("dataset", sort=True)]


def table2_markdown(section: StudySection) -> str:
    """Table 2 as the paper prints it (best search score, seeds mean ± std), with the run counts and shares."""
    table = section.table
    shown = pd.DataFrame(
        {
            "loss": table["loss"],
            f"best {section.metric} ({section.search_phase or 'no'} search)": table["best_search"],
            "seeds mean ± std": [_mean_std(m, s) for m, s in zip(table["seeds_mean"], table["seeds_std"], strict=True)],
            "search runs": table["n_search"],
            "seed runs": table["n_seeds"],
            "diverged": table["diverged_share"].map(_percent),
            "failed": table["failed_share"].map(_percent),
            "learned nothing": table["flagged_share"].map(_percent),
        }
    )
    return markdown_table(shown)


def metrics_markdown(metrics: pd.DataFrame) -> str:
    """The metrics table with headers that say where each number comes from."""

    def header(column: str) -> str:
        if column.startswith("search_"):
            return f"{column.removeprefix('search_')} (best run)"
        if column.startswith("seeds_"):
            return f"{column.removeprefix('seeds_')} (seeds mean)"
        return {"best_run": "best search run"}.get(column, column)

    return markdown_table(metrics.rename(columns=header))


def _mean_std(mean: float, std: float) -> str | None:
    if pd.isna(mean):
        return None
    return f"{mean:.4g}" if pd.isna(std) else f"{mean:.4g} ± {std:.2g}"


def _percent(share: float) -> str | None:
    return None if pd.isna(share) else f"{100 * share:.0f}%"


def _file_stem(dataset: str) -> str:
    return re.sub(r"[^\w.-]", "_", dataset)


def budget_axis_limits(
    curves: dict[str, pd.DataFrame], runs: pd.DataFrame, search_phase: str, zoom: float = 3.0, margin: float = 0.05
) -> tuple[float, float] | None:
    """The budget plot's y axis: the span of the completed search runs' scores (padded) where the worst scores of
    diverged and failed runs (FID 31337) would stretch it ``zoom`` times beyond, flattening the curves where they
    differ; None (the full range) otherwise."""
    search = runs[(runs["phase"] == search_phase) & (runs["status"] == "completed")]
    scores = search["objective"].astype(float)
    scores = scores[np.isfinite(scores)]
    bounds = pd.concat([curve[["lower", "upper"]] for curve in curves.values()]).to_numpy(dtype=float)
    bounds = bounds[np.isfinite(bounds)]
    if scores.empty or bounds.size == 0:
        return None
    low, high = float(scores.min()), float(scores.max())
    pad = margin * (high - low) or margin * max(abs(high), 1.0)
    return (low - pad, high + pad) if np.ptp(bounds) > zoom * (high - low + 2 * pad) else None


def delta_curves(runs: pd.DataFrame, higher_is_better: bool, search_phase: str = "wide") -> pd.DataFrame:
    """Per loss, precision and recall against δ at its best search run's best evaluation (a row per loss and δ);
    empty when no record holds ``precision@<δ>`` curves."""
    columns = {(m[1], float(m[2])): c for c in runs.columns if (m := _CURVE_COLUMN.match(c))}
    deltas = sorted({delta for _, delta in columns})
    rows = [
        {"loss": loss, "run": run["run"], "delta": delta}
        | {metric: run[columns[metric, delta]] if (metric, delta) in columns else None for metric in _CURVE_METRICS}
        for loss, run in best_search_runs(runs, higher_is_better, search_phase).iterrows()
        for delta in deltas
    ]
    curves = pd.DataFrame(rows, columns=["loss", "run", "delta", *_CURVE_METRICS])
    return curves.astype(dict.fromkeys(_CURVE_METRICS, float)).dropna(subset=list(_CURVE_METRICS), how="all")


def _protocol_delta(runs: pd.DataFrame, curves: pd.DataFrame) -> float | None:
    """The δ recorded in the protocol of the runs whose curves are drawn (None when unknown or not one value)."""
    deltas = runs.loc[runs["run"].isin(curves["run"]), "delta"].dropna().unique() if "delta" in runs else []
    return float(deltas[0]) if len(deltas) == 1 else None


def plot_delta_curves(curves: pd.DataFrame, delta: float | None, title: str) -> Figure:
    """P(δ) and R(δ) side by side, a line per loss, the protocol's δ marked: how much a ranking owes to δ."""
    figure = Figure(figsize=(9.6, 4.2))
    axes = figure.subplots(1, 2, sharey=True)
    deltas = sorted(curves["delta"].unique())
    for ax, metric in zip(axes, _CURVE_METRICS, strict=True):
        for loss, curve in curves.groupby("loss", sort=False):
            ax.plot(curve["delta"], curve[metric], marker="o", markersize=3, label=loss)
        if delta is not None:
            ax.axvline(delta, color="grey", linestyle="--", label=f"protocol's δ = {delta:g}")
        ax.set_xscale("log")
        ax.set_xticks(deltas, [f"{d:g}" for d in deltas], fontsize=8, rotation=45)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("δ (L2 distance, pixels in [0, 1])")
        ax.set_title(f"{metric}(δ)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share within δ (best search run of each loss)")
    axes[0].set_ylim(-0.03, 1.03)
    axes[1].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def write_section_files(section: StudySection, runs: pd.DataFrame, out_dir: Path) -> dict[str, str]:
    """The section's CSVs and PNGs, named ``<dataset>_<what>``; returns their names by what they show."""
    stem, label = _file_stem(section.dataset), f"{section.metric} ({better_label(section.higher_is_better)})"
    files = {"table2": f"{stem}_table2.csv", "metrics": f"{stem}_metrics.csv"}
    section.table.to_csv(out_dir / files["table2"], index=False)
    if not section.per_metric.empty:
        files["per_metric"] = f"{stem}_per_metric.csv"
        section.per_metric.to_csv(out_dir / files["per_metric"], index=False)
    section.metrics.to_csv(out_dir / files["metrics"], index=False)
    if section.search_phase is not None:
        title = f"{section.dataset}: {section.search_phase} search, score per run"
        figure = plot_search_scores(runs, section.metric, section.higher_is_better, title, section.search_phase)
        files["scores"] = f"{stem}_scores.png"
        figure.savefig(out_dir / files["scores"], dpi=120)
    if section.curves:
        files["budget_csv"] = f"{stem}_budget.csv"
        curves = pd.concat(section.curves, names=["loss", None])
        curves.reset_index(level=0).to_csv(out_dir / files["budget_csv"], index=False)
        title = f"{section.dataset}: expected best of k {section.search_phase} trials (95% bootstrap interval)"
        budgets = len(next(iter(section.curves.values())))
        limits = budget_axis_limits(section.curves, runs, section.search_phase)
        figure = plot_budget_curves(section.curves, label, title, log_x=budgets > 10, ylim=limits)
        files["budget"] = f"{stem}_budget.png"
        figure.savefig(out_dir / files["budget"], dpi=120)
    points = precision_recall_points(runs, section.search_phase) if section.search_phase else None
    if points is not None:
        files["pr_scatter_csv"], files["pr_scatter"] = f"{stem}_precision_recall.csv", f"{stem}_precision_recall.png"
        points.to_csv(out_dir / files["pr_scatter_csv"], index=False)
        title = f"{section.dataset}: precision against recall, {section.search_phase} runs"
        plot_precision_recall(points, title).savefig(out_dir / files["pr_scatter"], dpi=120)
    curves = delta_curves(runs, section.higher_is_better, section.search_phase) if section.search_phase else None
    if curves is not None and not curves.empty:
        files["pr_delta_csv"], files["pr_delta"] = f"{stem}_pr_delta.csv", f"{stem}_pr_delta.png"
        curves.to_csv(out_dir / files["pr_delta_csv"], index=False)
        title = f"{section.dataset}: precision and recall against δ, best {section.search_phase} run of each loss"
        section.delta = _protocol_delta(runs, curves)
        plot_delta_curves(curves, section.delta, title).savefig(out_dir / files["pr_delta"], dpi=120)
    return files


def commands_markdown(section: StudySection) -> str:
    """The seeds-phase commands as one shell block, a comment naming each loss."""
    lines = [line for loss, command in section.commands.items() for line in (f"# {loss}", command)]
    return "```bash\n" + "\n".join(lines) + "\n```"


def section_markdown(section: StudySection) -> str:
    """The dataset's part of ``study.md``."""
    files, how = section.files, better_label(section.higher_is_better)
    parts = [
        f"## {section.dataset}",
        f"Score: best `{section.metric}` of each run ({how}); a diverged or failed run scores the protocol's worst "
        f"value. Search phase: {section.search_phase or 'none'}.",
        f"### Table 2: best search score and the seeds phase\n\n{table2_markdown(section)}\n\nCSV: `{files['table2']}`",
    ]
    if "per_metric" in files:
        arrows = {m: f"{m} {'↓' if lower_is_better(m) else '↑'}" for m in section.per_metric.columns if m != "loss"}
        parts.append(
            "### Table 2 for every metric\n\nEach metric's own best over the search runs (↓ lower is better, ↑ "
            f"higher):\n\n{markdown_table(section.per_metric.rename(columns=arrows))}\n\nCSV: `{files['per_metric']}`"
        )
    if "scores" in files:
        parts.append(f"### Search scores per loss\n\n![search scores per loss]({files['scores']})")
    if "budget" in files:
        parts.append(
            "### Expected best score against the budget\n\n"
            "Bootstrap over the search runs, diverged and failed ones at their worst score. Where those scores would "
            "stretch the y axis far beyond the completed runs' scores, it spans the latter only: at small budgets a "
            "curve may then start beyond it.\n\n"
            f"![expected best against budget]({files['budget']})\n\nCSV: `{files['budget_csv']}`"
        )
    if "pr_scatter" in files:
        parts.append(
            "### Precision against recall\n\n"
            "Every search run at its best evaluation: quality (precision) and diversity (recall) apart, which the "
            f"primary score mixes.\n\n![precision against recall]({files['pr_scatter']})\n\nCSV: "
            f"`{files['pr_scatter_csv']}`"
        )
    if "pr_delta" in files:
        marked = (
            f"Dashed: the protocol's δ = {section.delta:g}, where precision, recall and F1 are reported."
            if section.delta is not None
            else ""
        )
        parts.append(
            "### Precision and recall against δ\n\n"
            f"The best evaluation of each loss's best search run, its shares within each δ of the scorer's curve. "
            f"{marked}\n\n"
            f"![precision and recall against delta]({files['pr_delta']})\n\nCSV: `{files['pr_delta_csv']}`"
        )
    parts.append(
        "### Metrics at each loss's best search run and mean over the seeds phase\n\n"
        f"{metrics_markdown(section.metrics)}\n\nCSV: `{files['metrics']}`"
    )
    if section.commands:
        parts.append(f"### Seeds phase: the best setting of each loss, trained again\n\n{commands_markdown(section)}")
    return "\n\n".join(parts)


def write_study_report(
    runs: pd.DataFrame, out_dir: Path, title: str, num_seeds: int = DEFAULT_SEEDS
) -> list[StudySection]:
    """Every dataset's section: its files, and ``study.md`` with all of them. ``runs`` as ``load_runs`` gives them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = study_sections(runs, num_seeds)
    for section in sections:
        section.files = write_section_files(section, runs[runs["dataset"] == section.dataset], out_dir)
    body = "\n\n".join(section_markdown(section) for section in sections)
    (out_dir / STUDY_MARKDOWN).write_text(f"# Study report: {title}\n\n{body}\n")
    return sections


def study_report(root: Path, out_dir: Path | None = None, num_seeds: int = DEFAULT_SEEDS) -> list[StudySection]:
    """The study report of the runs under a study directory, written to ``out_dir`` (default ``<root>/report``)."""
    return write_study_report(load_runs(root).runs, out_dir or root / "report", str(root), num_seeds)
