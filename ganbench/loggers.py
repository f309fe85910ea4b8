"""The run's Lightning loggers around a run: the W&B run id that a resumed run continues, and at the end the
record's results in the W&B summary and the W&B run's final state."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig

from ganbench.record import RunRecord
from ganbench.run_dir import EarlierLaunch


def with_wandb_run_id(cfg: DictConfig, earlier: EarlierLaunch) -> None:
    """A W&B logger gets the run id of the earlier launch in this directory (a new one for a new run), so a resumed
    run continues the same W&B run instead of starting a second one; the id is saved in config.yaml."""
    if not cfg.logger or not str(cfg.logger.get("_target_", "")).endswith("WandbLogger") or cfg.logger.get("id"):
        return
    cfg.logger.id = (earlier.config or {}).get("logger.id") or secrets.token_hex(6)  # W&B: unique in the project


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """The logger of ``cfg.logger`` (none for ``logger=none``), writing under the run directory."""
    if not cfg.logger:
        return []
    logger = instantiate(cfg.logger, save_dir=str(run_dir))
    if isinstance(logger, WandbLogger):
        # Lightning 2.6 always passes wandb.init(anonymous=...), which W&B 0.31 deprecated: W&B then warns on every
        # run, before its silent setting applies. Dropping the key changes nothing else (W&B ignores its value).
        logger._wandb_init.pop("anonymous", None)
    return [logger]


def wandb_summary(record: RunRecord) -> dict[str, Any]:
    """What a run publishes in its W&B summary: status, objective and overrides, ``final/<metric>`` and
    ``best/<metric>``, so dashboards sort runs by them and ``analysis.wandb_runs.wandb_record`` rebuilds the record."""
    summary = {"status": record.status, "g_steps": record.g_steps, "wall_time_s": record.wall_time_s}
    summary |= {"objective": record.objective, "overrides": record.overrides, "warnings": record.warnings}
    summary |= {f"final/{k}": v for k, v in (record.final or {}).items()}
    return summary | {f"best/{k}": v for k, v in (record.best or {}).items()}


def close_loggers(loggers: list[Logger], record: RunRecord, exit_code: int) -> None:
    """Final and best metrics in the W&B run summary, so dashboards and tables can sort runs by them, and the W&B
    run closed with the run's status: failed with its exit code, preempted when it was interrupted."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            run.summary.update(wandb_summary(record))
            if record.status == "interrupted":
                run.mark_preempting()
            run.finish(exit_code=exit_code)
