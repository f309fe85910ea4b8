"""The Hydra entry point: compose → validate → instantiate → fit → evaluate → write the run record.

``ganbench-train`` (or ``python -m ganbench.train``) takes Hydra overrides, e.g. ``loss=wgan_gp dataset=grid`` or
``-m loss=mm,ns,lsgan,wgan,wgan_gp`` for a sweep. Bad input (a config value out of range, a missing dataset or weights
file: a ``UserError``) stops a single run with one line and exit code 2, a crash with exit code 1 and the traceback in
the run's error.log; inside a multirun such a job is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import json
import math
import secrets
import signal
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
from ganbench.errors import find_user_error
from ganbench.evaluation import Evaluation
from ganbench.interruption import StopOnSignal, exit_code
from ganbench.module import GANModule
from ganbench.progress import BudgetProgressBar
from ganbench.record import (
    SUMMARY_FILE,
    RunRecord,
    Status,
    apply_progress,
    record_from_config,
    search_objective,
    write_record,
)
from ganbench.resolvers import register as register_resolvers
from ganbench.run_dir import (
    LAST_CHECKPOINT,
    PROGRESS_FILE,
    RESOLVED_CONFIG,
    EarlierLaunch,
    read_earlier_launch,
    run_dir_lock,
)
from ganbench.validate import ConfigError, validate, validate_launch

register_resolvers()

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
ERROR_FILE = "error.log"


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


def _close_loggers(loggers: list[Logger], record: RunRecord, exit_code: int) -> None:
    """Final and best metrics in the W&B run summary, so dashboards and tables can sort runs by them, and the W&B
    run closed with the run's status: failed with its exit code, preempted when it was interrupted."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            run.summary.update(wandb_summary(record))
            if record.status == "interrupted":
                run.mark_preempting()
            run.finish(exit_code=exit_code)


def _with_wandb_run_id(cfg: DictConfig, earlier: EarlierLaunch) -> None:
    """A W&B logger gets the run id of the earlier launch in this directory (a new one for a new run), so a resumed
    run continues the same W&B run instead of starting a second one; the id is saved in config.yaml."""
    if not cfg.logger or not str(cfg.logger.get("_target_", "")).endswith("WandbLogger") or cfg.logger.get("id"):
        return
    cfg.logger.id = (earlier.config or {}).get("logger.id") or secrets.token_hex(6)  # W&B: unique in the project


def _read_progress(run_dir: Path) -> dict[str, Any] | None:
    """What training reached so far (None before the first evaluation). Read on every way out of a run, so an
    unreadable file must not hide why the run ended: it counts as absent, and the record says 0 steps."""
    try:
        return json.loads((run_dir / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _final_status(progress: dict[str, Any], g_step_budget: int, stop: StopOnSignal) -> Status:
    """How a fit that returned ended: a NaN/Inf loss, the budget spent, a stop signal, or training.time_limit."""
    if progress.get("diverged"):
        return "diverged"
    if progress.get("g_steps", 0) >= g_step_budget:
        return "completed"
    return "interrupted" if stop.received else "timed_out"


def _explain_status(record: RunRecord, stop: StopOnSignal, error: BaseException | None, run_dir: Path) -> str | None:
    """The record's ``error``: what stopped a run short of its budget and how to go on."""
    steps = f"after {record.g_steps} of {record.g_step_budget} G steps"
    if record.status == "interrupted":
        cause = stop.received.name if stop.received else type(error).__name__
        resume = "resume from its checkpoint" if (run_dir / LAST_CHECKPOINT).exists() else "run it (no checkpoint yet)"
        return f"interrupted by {cause} {steps}; launch the same command again to {resume}"
    if record.status == "timed_out":
        return f"stopped by training.time_limit {steps}; launch it again to resume from its checkpoint"
    if record.status == "failed" and error is not None:
        user_error = find_user_error(error)
        return str(user_error) if user_error else f"{type(error).__name__}: {error}"
    return None


def train(
    cfg: DictConfig,
    run_dir: Path,
    overrides: list[str] | None = None,
    earlier: EarlierLaunch | None = None,
    stop: StopOnSignal | None = None,
) -> RunRecord:
    """Train one run and write its record to ``run_dir``; exceptions propagate after the record is written, except a
    stop (a signal, Ctrl-C): then the record says ``interrupted``.

    A run directory that already holds ``checkpoints/last.ckpt`` (a preempted or killed run launched again into the
    same directory) resumes from it: counters, optimizer states, EMA, RNG streams, evaluation history. The record's
    wall time then adds up the invocations that wrote a record (time after the last record of a killed one is lost).
    Whatever ends the run, its record keeps the steps, history and metrics that ``progress.json`` holds."""
    earlier = earlier or read_earlier_launch(run_dir)
    earlier.check_same_run(cfg)
    stop = stop or StopOnSignal()
    _with_wandb_run_id(cfg, earlier)
    record = record_from_config(cfg, "failed", overrides or [])
    if not earlier.has_checkpoint:  # a run started afresh: an earlier launch's progress is not this run's
        (run_dir / PROGRESS_FILE).unlink(missing_ok=True)
    OmegaConf.save(cfg, run_dir / RESOLVED_CONFIG, resolve=True)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    loggers: list[Logger] = []
    started = time.perf_counter()
    error: BaseException | None = None
    with stop:
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
                    stop,
                    *([BudgetProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []),
                    *([LaunchTimeLimit(cfg.training.time_limit)] if cfg.training.time_limit else []),
                ],
            )
            stop.forward_to(trainer)
            for logger in loggers:
                logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
            resume_from = run_dir / LAST_CHECKPOINT if earlier.has_checkpoint else None
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
            record.status = _final_status(_read_progress(run_dir) or {}, cfg.training.g_steps, stop)
        except BaseException as raised:
            error = raised
            stopped = stop.received is not None or isinstance(raised, (KeyboardInterrupt, SystemExit))
            record.status = "interrupted" if stopped else "failed"
            (run_dir / ERROR_FILE).write_text(traceback.format_exc())
            if not stopped:  # a stop that came as an exception (a second Ctrl-C, submitit's requeue) is an interruption
                raise
        finally:
            if (progress := _read_progress(run_dir)) is not None:
                apply_progress(record, progress)
            record.warnings = warnings_of(record.final) if record.status != "failed" else []
            record.error = _explain_status(record, stop, error, run_dir)
            record.wall_time_s = round(earlier.wall_time_s + time.perf_counter() - started, 3)
            record.objective = search_objective(record, cfg.eval.worst_score)
            write_record(record, run_dir)
            _close_loggers(loggers, record, _exit_code(record, stop, error))
    return record


def _exit_code(record: RunRecord, stop: StopOnSignal, error: BaseException | None = None) -> int:
    """The process's exit code for this record: 0 for a run that ended by itself, 128 + signal for one stopped by a
    signal (130 when none is known, as for a second Ctrl-C), 2 for bad input and 1 for a crash."""
    if record.status == "interrupted":
        return exit_code(stop.received or signal.SIGINT)
    if record.status == "failed":
        return 2 if find_user_error(error) else 1
    return 0


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


def _record_invalid_config(cfg: DictConfig, run_dir: Path, overrides: list[str], error: ConfigError) -> None:
    """A failed record for a run refused before it started, so a sweep's table shows why; never over the record of a
    run launched earlier in this directory."""
    if (run_dir / SUMMARY_FILE).exists():
        return
    record = record_from_config(cfg, "failed", overrides)
    record.error, record.objective = str(error), search_objective(record, cfg.eval.worst_score)
    write_record(record, run_dir)


def _launch(cfg: DictConfig, run_dir: Path, overrides: list[str], in_multirun: bool, stop: StopOnSignal) -> float:
    """Validate, take the run directory, skip a finished run or train; bad input and crashes end as one line."""
    worst_score = float(cfg.eval.worst_score)
    try:
        validate(cfg)
        validate_launch(cfg, in_multirun)
    except ConfigError as error:
        _record_invalid_config(cfg, run_dir, overrides, error)
        _report_failure(f"ganbench: invalid config: {error}", 2, in_multirun)
        return worst_score
    try:
        with run_dir_lock(run_dir):
            earlier = read_earlier_launch(run_dir)
            if (finished := earlier.finished_record(cfg)) is not None:
                print(f"{run_dir}: finished earlier ({finished['status']}), not trained again")
                return float(finished["objective"])
            record = train(cfg, run_dir, overrides, earlier, stop)
    except Exception as error:
        if (user_error := find_user_error(error)) is not None:
            _report_failure(f"ganbench: {user_error}", 2, in_multirun)
        else:
            message = f"ganbench: run failed: {type(error).__name__}: {error}"
            where = f"  full traceback: {run_dir / ERROR_FILE}; record: {run_dir / SUMMARY_FILE}"
            _report_failure(f"{message}\n{where}", 1, in_multirun)
        return worst_score
    print(_describe(record))
    if record.status == "interrupted":  # the signal ends the whole launch, a multirun too: its process is stopping
        print(f"ganbench: {record.error}", file=sys.stderr)
        sys.exit(_exit_code(record, stop))
    return float(record.objective)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra task: returns the run's search objective (``search_objective``: the protocol's worst score for a failed
    or diverged run, so a sweeper always gets a number); never lets one failed job take a multirun down, but a stop
    signal ends the whole launch with 128 + its number (the run resumes when launched again)."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_multirun = hydra_cfg.mode == RunMode.MULTIRUN
    stop = StopOnSignal()
    with stop:
        try:
            return _launch(cfg, run_dir, list(hydra_cfg.overrides.task), in_multirun, stop)
        except KeyboardInterrupt:  # a second Ctrl-C before training started
            print("ganbench: interrupted before training started", file=sys.stderr)
            sys.exit(exit_code(signal.SIGINT))


def cli() -> None:
    """``ganbench-train``: Hydra's own refusals of the command line (an unknown config group or key, an override it
    cannot parse) exit 2 like all bad input. They come before any job starts, when no job config exists yet."""
    try:
        main()
    except SystemExit as stopped:
        if stopped.code == 1 and not HydraConfig.initialized():
            sys.exit(2)
        raise


if __name__ == "__main__":
    cli()
