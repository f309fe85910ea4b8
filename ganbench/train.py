"""The Hydra entry point: compose → validate → instantiate → fit → evaluate → write the run record.

``ganbench-train`` (or ``python -m ganbench.train``) takes Hydra overrides, e.g. ``loss=wgan_gp dataset=grid`` or
``-m loss=mm,ns,lsgan,wgan,wgan_gp`` for a sweep. Bad input (a config value out of range, a missing dataset or weights
file: a ``UserError``) stops a single run with one line and exit code 2, a crash with exit code 1 and the traceback in
the run's error.log; inside a multirun such a job is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from ganbench.analysis.wandb_runs import wandb_summary
from ganbench.checkpointing import LaunchTimeLimit, PeriodicCheckpoint
from ganbench.diagnostics import headline, warnings_of
from ganbench.errors import UserError, find_user_error
from ganbench.evaluation import Evaluation
from ganbench.module import GANModule
from ganbench.progress import BudgetProgressBar
from ganbench.record import SUMMARY_FILE, RunRecord, record_from_config, search_objective, write_record
from ganbench.resolvers import register as register_resolvers
from ganbench.validate import ConfigError, validate, validate_launch

register_resolvers()

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
ERROR_FILE = "error.log"
RESOLVED_CONFIG = "config.yaml"
PROGRESS_FILE = "progress.json"  # written by rank 0 during training (see Evaluation); the record is built from it
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# Keys that do not change what a run computes: launching again with other values still resumes or skips the run
# (a study's budget grows with search.trials_per_loss; the launcher, logger and time limit may change between launches).
NOT_IDENTITY = ("parallel_jobs", "cpu_threads", "search.", "logger.", "training.time_limit")


def build_module(cfg: DictConfig) -> GANModule:
    """Networks, loss and optimizers from their config groups, wired into the training module."""
    return GANModule(
        generator=instantiate(cfg.model.generator),
        discriminator=instantiate(cfg.model.discriminator),
        loss=instantiate(cfg.loss),
        generator_optimizer=instantiate(cfg.optim.generator),
        discriminator_optimizer=instantiate(cfg.optim.discriminator),
        n_critic=cfg.training.n_critic,
        g_step_budget=cfg.training.g_steps,
        ema_decay=cfg.training.ema_decay,
        compile_networks=cfg.training.compile,
        seed=cfg.seed,
    )


def _publish_to_wandb(loggers: list[Logger], record: RunRecord) -> None:
    """Final and best metrics in the W&B run summary, so dashboards and tables can sort runs by them."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(wandb_summary(record))
            logger.experiment.finish(exit_code=0 if record.status != "failed" else 1)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}."""
    if not isinstance(node, dict):
        return {prefix: node}
    return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}.{key}".lstrip(".")).items()}


def _changed_keys(cfg: DictConfig, run_dir: Path) -> list[str]:
    """Config keys (those that decide the run's numbers) whose value differs from the run launched earlier in
    ``run_dir``."""
    before = _flatten(OmegaConf.to_container(OmegaConf.load(run_dir / RESOLVED_CONFIG)))
    now = _flatten(OmegaConf.to_container(cfg, resolve=True))
    keys = (k for k in before.keys() | now.keys() if not k.startswith(NOT_IDENTITY))
    return sorted(k for k in keys if before.get(k) != now.get(k))


def _finished_record(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """The record of this very run when an earlier launch finished it (completed or diverged, same config), so that
    launching an interrupted sweep again skips it; None when the run is new, unfinished, failed or changed."""
    summary = run_dir / SUMMARY_FILE
    if not summary.exists() or not (run_dir / RESOLVED_CONFIG).exists():
        return None
    record = json.loads(summary.read_text())
    if record["status"] not in ("completed", "diverged") or _changed_keys(cfg, run_dir):
        return None
    return record


def _check_same_run(cfg: DictConfig, run_dir: Path) -> None:
    """Resuming is only for the same run: a directory holding another run's checkpoint (other loss, data, seed...)
    is refused before anything in it is touched. Only the budget may grow."""
    if not (run_dir / LAST_CHECKPOINT).exists() or not (run_dir / RESOLVED_CONFIG).exists():
        return
    changed = [key for key in _changed_keys(cfg, run_dir) if key != "training.g_steps"]
    if changed:
        raise UserError(
            f"{run_dir} holds a checkpoint of a different run (differs in {', '.join(changed)}); resuming it would mix "
            f"two runs. Use a new directory (a new hydra.run.dir or hydra.sweep.dir) or delete "
            f"{run_dir / LAST_CHECKPOINT} to start that run afresh"
        )


def _earlier_wall_time(run_dir: Path) -> float:
    """Wall time already spent in this run directory by earlier invocations (0 for a new run)."""
    summary = run_dir / SUMMARY_FILE
    if not (run_dir / LAST_CHECKPOINT).exists() or not summary.exists():
        return 0.0
    return float(json.loads(summary.read_text()).get("wall_time_s") or 0.0)


def _final_status(progress: dict[str, Any], g_step_budget: int) -> str:
    """How a fit that returned ended: a NaN/Inf loss, the budget spent, or stopped early by training.time_limit."""
    if progress["diverged"]:
        return "diverged"
    return "completed" if progress["g_steps"] >= g_step_budget else "timed_out"


def train(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> RunRecord:
    """Train one run and write its record to ``run_dir``; exceptions propagate after the record says 'failed'.

    A run directory that already holds ``checkpoints/last.ckpt`` (a preempted or killed run launched again into the
    same directory) resumes from it: counters, optimizer states, EMA, RNG streams, evaluation history. The record's
    wall time then adds up the invocations that wrote a record (time after the last record of a killed one is lost)."""
    _check_same_run(cfg, run_dir)
    record = record_from_config(cfg, "failed", overrides or [])
    earlier_wall_time = _earlier_wall_time(run_dir)
    OmegaConf.save(cfg, run_dir / RESOLVED_CONFIG, resolve=True)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    loggers: list[Logger] = []
    started = time.perf_counter()
    try:
        datamodule = instantiate(cfg.dataset)
        datamodule.batches_per_step = cfg.training.n_critic
        module = build_module(cfg)
        evaluation: Evaluation = instantiate(
            cfg.eval, image_dir=run_dir / "samples", progress_file=run_dir / PROGRESS_FILE
        )
        if cfg.logger:
            loggers.append(instantiate(cfg.logger, save_dir=str(run_dir)))
        checkpoint = PeriodicCheckpoint(run_dir / LAST_CHECKPOINT, cfg.training.checkpoint_every_n_g_steps)
        trainer: pl.Trainer = instantiate(
            cfg.trainer,
            default_root_dir=str(run_dir),
            logger=loggers or False,
            callbacks=[
                evaluation,
                checkpoint,
                *([BudgetProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []),
                *([LaunchTimeLimit(cfg.training.time_limit)] if cfg.training.time_limit else []),
            ],
        )
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        resume_from = run_dir / LAST_CHECKPOINT
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from if resume_from.exists() else None)

        progress = json.loads((run_dir / PROGRESS_FILE).read_text())
        record.status = _final_status(progress, cfg.training.g_steps)
        if record.status == "timed_out":
            record.error = (
                f"stopped by training.time_limit after {progress['g_steps']} of {cfg.training.g_steps} G steps; "
                "launch it again to resume from its checkpoint"
            )
        record.g_steps, record.d_steps = progress["g_steps"], progress["d_steps"]
        record.primary_metric, record.higher_is_better = evaluation.primary, evaluation.higher_is_better
        record.history, record.sample_image = progress["history"], progress["sample_image"]
        record.protocol = progress["protocol"]
        record.final = record.history[-1] if record.history else None
        record.best = evaluation.best(record.history)
        record.warnings = warnings_of(record.final)
    except BaseException as error:
        user_error = find_user_error(error)
        record.error = str(user_error) if user_error else f"{type(error).__name__}: {error}"
        (run_dir / ERROR_FILE).write_text(traceback.format_exc())
        raise
    finally:
        record.wall_time_s = round(earlier_wall_time + time.perf_counter() - started, 3)
        record.objective = search_objective(record, cfg.eval.worst_score)
        write_record(record, run_dir)
        _publish_to_wandb(loggers, record)
    return record


def _report_failure(message: str, exit_code: int, in_multirun: bool) -> None:
    """One message on stderr; a single run exits with ``exit_code``, a multirun goes on to its next job."""
    print(message, file=sys.stderr)
    if not in_multirun:
        sys.exit(exit_code)


def _describe(record: RunRecord) -> str:
    """The run's one result line: status, the protocol's final and best metrics, and the diagnostics' warnings."""

    def fmt(metrics: dict[str, float] | None) -> str:
        shown = headline(metrics, record.primary_metric)
        return ", ".join(f"{k} {'n/a' if v is None else format(v, '.4g')}" for k, v in shown.items()) or "none"

    line = (
        f"{record.loss} on {record.dataset}: {record.status} after {record.g_steps} G steps in "
        f"{record.wall_time_s:.0f} s | final: {fmt(record.final)} | best {record.primary_metric}: "
        f"{fmt(record.best)}"
    )
    d_auc = (record.final or {}).get("d_auc")
    if d_auc is not None and math.isfinite(d_auc):  # NaN (stored as null): D took no step since the last evaluation
        line += f" | D accuracy {d_auc:.2f}"
    return line + "".join(f" | WARNING: {warning}" for warning in record.warnings)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra task: returns the run's search objective (``search_objective``: the protocol's worst score for a failed
    or diverged run, so a sweeper always gets a number); never lets one job take a multirun down."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_multirun = hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task)
    worst_score = float(cfg.eval.worst_score)
    try:
        validate(cfg)
        validate_launch(cfg, in_multirun)
    except ConfigError as error:
        if not (run_dir / SUMMARY_FILE).exists():  # never overwrite the record of a run launched earlier here
            record = record_from_config(cfg, "failed", overrides)
            record.error, record.objective = str(error), search_objective(record, worst_score)
            write_record(record, run_dir)
        _report_failure(f"ganbench: invalid config: {error}", 2, in_multirun)
        return worst_score
    if (finished := _finished_record(cfg, run_dir)) is not None:
        print(f"{run_dir}: finished earlier ({finished['status']}), not trained again")
        return float(finished["objective"])
    try:
        record = train(cfg, run_dir, overrides)
    except Exception as error:
        if (user_error := find_user_error(error)) is not None:
            _report_failure(f"ganbench: {user_error}", 2, in_multirun)
        else:
            message = f"ganbench: run failed: {type(error).__name__}: {error}"
            where = f"  full traceback: {run_dir / ERROR_FILE}; record: {run_dir / 'summary.json'}"
            _report_failure(f"{message}\n{where}", 1, in_multirun)
        return worst_score
    print(_describe(record))
    return float(record.objective)


if __name__ == "__main__":
    main()
