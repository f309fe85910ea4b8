"""The runs of a W&B project as the table ``load_runs`` builds from disk, so a study logged online is reported alike.

A W&B run holds the fully resolved config (``logger.log_hyperparams``) and, in its summary, the record's status,
``final/<metric>``, ``best/<metric>`` and the run's Hydra overrides (``ganbench.loggers.wandb_summary``), from which
the seeds-phase commands are built as from disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

import pandas as pd
from omegaconf import OmegaConf

from ganbench.analysis.runs import record_row
from ganbench.record import RunRecord, record_from_config, search_objective


class WandbRun(Protocol):
    """What is read of a ``wandb.apis.public.Run``."""

    name: str | None
    id: str
    config: Mapping[str, Any]
    summary: Mapping[str, Any]


class WandbApi(Protocol):
    def runs(self, path: str) -> Iterable[WandbRun]: ...


def _stage(summary: Mapping[str, Any], stage: str) -> dict[str, Any] | None:
    """The ``<stage>/<metric>`` entries of a summary as the record's metric dict (None: the run never evaluated)."""
    prefix = f"{stage}/"
    metrics = {key.removeprefix(prefix): value for key, value in summary.items() if key.startswith(prefix)}
    return metrics or None


def wandb_record(config: Mapping[str, Any], summary: Mapping[str, Any]) -> RunRecord | None:
    """The run record of one W&B run; None for a run that has not published its status (still running, or killed
    before it wrote its record), which has no result to report yet."""
    status = summary.get("status")
    if status is None:
        return None
    cfg = OmegaConf.create({key: value for key, value in config.items() if not key.startswith("_")})
    record = record_from_config(cfg, status, list(summary.get("overrides", [])))
    record.primary_metric, record.higher_is_better = cfg.eval.primary, cfg.eval.higher_is_better
    record.g_steps, record.wall_time_s = summary.get("g_steps", 0), summary.get("wall_time_s", 0.0)
    record.final, record.best = _stage(summary, "final"), _stage(summary, "best")
    record.warnings = list(summary.get("warnings", []))
    record.versions, record.command = {}, []
    record.objective = search_objective(record, cfg.eval.worst_score)
    return record


def load_runs_from_wandb(path: str, api: WandbApi | None = None) -> pd.DataFrame:
    """One row per run of the W&B project ``path`` (entity/project), with ``load_runs``' columns; runs without a
    status are left out (``wandb_record``). ``api`` defaults to ``wandb.Api()``, which needs a login and network."""
    if api is None:
        import wandb  # imported here: slow to import, and only this path needs it

        api = wandb.Api()
    rows = []
    for run in api.runs(path):
        record = wandb_record(run.config, dict(run.summary.items()))
        if record is not None:
            rows.append(record_row(run.name or run.id, asdict(record)))
    return pd.DataFrame(rows)
