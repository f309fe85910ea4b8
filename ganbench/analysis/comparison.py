"""The loss comparison of one sweep: a table with a row per run and a figure of their final samples."""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import pandas as pd
from matplotlib.figure import Figure

from ganbench.analysis.runs import IDENTITY_COLUMNS
from ganbench.diagnostics import is_headline

ERROR_WIDTH = 60  # characters of a run's error shown in the comparison table


def _metric_columns(runs: pd.DataFrame, stage: str) -> list[str]:
    """The ``<stage>_<metric>`` columns (stage: final, best) of the protocols' metrics (``is_headline``), and the
    best evaluation's G step."""
    primaries = set(runs["primary_metric"].dropna()) if "primary_metric" in runs else set()
    names = {c: c.removeprefix(f"{stage}_") for c in runs.columns if c.startswith(f"{stage}_")}
    return [c for c, name in names.items() if name in primaries or is_headline(name) or c == "best_g_step"]


def _varying_hyperparameters(runs: pd.DataFrame) -> list[str]:
    """The ``hp_<key>`` columns whose values differ between the runs (absent counts as a value; compared as text, so a
    list value is no problem): what tells the rows of a sweep apart; the constant ones would only widen the table."""
    columns = [c for c in runs.columns if c.startswith("hp_")]
    return [c for c in columns if runs[c].map(repr).nunique() > 1]


def _short_error(error: object) -> object:
    """An error's first line, cut to ``ERROR_WIDTH`` characters: enough to tell a crash from a time limit in a table
    (the record and error.log keep all of it)."""
    if not isinstance(error, str):
        return error
    line = (error.strip().splitlines() or [""])[0]
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Identity and status, the hyperparameters that vary between the runs, the final metrics, then the best
    evaluation, in the records' own order, then D's final accuracy, the diagnostics' warnings (ganbench.diagnostics)
    and, when a run has one, the (shortened) error of failed, interrupted and timed-out runs."""
    final, best = _metric_columns(runs, "final"), _metric_columns(runs, "best")
    checks = [c for c in ("final_d_auc", "warnings") if c in runs.columns]
    table = runs[[*IDENTITY_COLUMNS, *_varying_hyperparameters(runs), *final, *best, *checks]]
    if "error" in runs and runs["error"].notna().any():
        table = table.assign(error=runs["error"].map(_short_error))
    return table


def samples_figure(runs: pd.DataFrame, columns: int = 5) -> Figure | None:
    """The last sample image of each run, side by side (None when no run saved one)."""
    with_images = runs[runs["sample_image"].notna()]
    if with_images.empty:
        return None
    rows = math.ceil(len(with_images) / columns)
    width = min(columns, len(with_images))
    figure = Figure(figsize=(3.2 * width, 3.4 * rows))
    for index, (_, run) in enumerate(with_images.iterrows()):
        ax = figure.add_subplot(rows, width, index + 1)
        ax.imshow(mpimg.imread(run["sample_image"]))
        ax.set_axis_off()
        ax.set_title(f"run {run['run']} · {run['status']}", fontsize=9)
    figure.suptitle(f"Final samples — {', '.join(sorted(runs['dataset'].unique()))}")
    figure.tight_layout()
    return figure
