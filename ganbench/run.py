"""One run in its run directory: build the parts from the config, fit, and write the run record on every way out.

The Hydra task (``ganbench.train``) decides whether to run; this module runs. A run directory that already holds
``checkpoints/last.ckpt`` (a preempted or killed run launched again into the same directory) resumes from it.
"""

from __future__ import annotations

import json
import signal
import time
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from ganbench.checkpointing import LaunchTimeLimit, PeriodicCheckpoint
from ganbench.diagnostics import warnings_of
from ganbench.errors import find_user_error
from ganbench.evaluation import Evaluation
from ganbench.interruption import StopOnSignal, exit_code
from ganbench.loggers import build_loggers, close_loggers, with_wandb_run_id
from ganbench.module import GANModule
from ganbench.progress_bar import GStepProgressBar
from ganbench.record import RunRecord, Status, apply_progress, record_from_config, search_objective, write_record
from ganbench.run_dir import LAST_CHECKPOINT, PROGRESS_FILE, RESOLVED_CONFIG, EarlierLaunch, read_earlier_launch

ERROR_FILE = "error.log"


def build_module(cfg: DictConfig) -> pl.LightningModule:
    """Networks, loss and optimizers from their config groups, wired into the training module: a GANModule, unless
    the config has a ``training_module`` node (set by ``conf/loss/vae.yaml``). That node instantiates to a function
    of the composed config that builds another training module with the interface the callbacks and the record
    read (a ``ganbench.budgeted_module.BudgetedModule``), e.g. ``ganbench.vae.build_module``."""
    if (builder := cfg.get("training_module")) is not None:
        return instantiate(builder)(cfg)
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


def build_trainer(
    cfg: DictConfig, run_dir: Path, evaluation: Evaluation, loggers: list[Logger], stop: StopOnSignal
) -> pl.Trainer:
    """The Lightning trainer of ``cfg.trainer`` with ganbench's callbacks: evaluation, checkpoint, stop signals,
    the G-step progress bar and the launch's time limit."""
    callbacks: list[pl.Callback] = [
        evaluation,
        PeriodicCheckpoint(run_dir / LAST_CHECKPOINT, cfg.training.checkpoint_every_n_g_steps),
        stop,
    ]
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(GStepProgressBar(f"{cfg.loss.name} on {cfg.dataset.name}"))
    if cfg.training.time_limit:
        callbacks.append(LaunchTimeLimit(cfg.training.time_limit))
    return instantiate(cfg.trainer, default_root_dir=str(run_dir), logger=loggers or False, callbacks=callbacks)


def read_progress(run_dir: Path) -> dict[str, Any] | None:
    """What training reached so far (None before the first evaluation). Read on every way out of a run, so an
    unreadable file must not hide why the run ended: it counts as absent, and the record says 0 steps."""
    try:
        return json.loads((run_dir / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None


def finish_record(
    record: RunRecord, progress: dict[str, Any] | None, wall_time_s: float, worst_score: float
) -> RunRecord:
    """The one place a record of a run that ended (``record.status`` set) gets its results: what training reached,
    the final evaluation's warnings, its wall time and its search objective."""
    if progress is not None:
        apply_progress(record, progress)
    record.warnings = warnings_of(record.final) if record.status != "failed" else []
    record.wall_time_s = round(wall_time_s, 3)
    record.objective = search_objective(record, worst_score)
    return record


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


def run_exit_code(record: RunRecord, stop: StopOnSignal, error: BaseException | None = None) -> int:
    """The process's exit code for this record: 0 for a run that ended by itself, 128 + signal for one stopped by a
    signal (130 when none is known, as for a second Ctrl-C), 2 for bad input and 1 for a crash."""
    if record.status == "interrupted":
        return exit_code(stop.received or signal.SIGINT)
    if record.status == "failed":
        return 2 if find_user_error(error) else 1
    return 0


def train(
    cfg: DictConfig,
    run_dir: Path,
    overrides: list[str] | None = None,
    earlier: EarlierLaunch | None = None,
    stop: StopOnSignal | None = None,
) -> RunRecord:
    """Train one run and write its record to ``run_dir``; exceptions propagate after the record is written, except a
    stop (a signal, Ctrl-C): then the record says ``interrupted``.

    On resume the record's wall time adds up the invocations that wrote a record (time after the last record of a
    killed one is lost). Whatever ends the run, its record keeps the steps, history and metrics of ``progress.json``."""
    earlier = earlier or read_earlier_launch(run_dir)
    earlier.check_same_run(cfg)
    stop = stop or StopOnSignal()
    with_wandb_run_id(cfg, earlier)
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
            loggers = build_loggers(cfg, run_dir)
            trainer = build_trainer(cfg, run_dir, evaluation, loggers, stop)
            stop.forward_to(trainer)
            for logger in loggers:
                logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
            resume_from = run_dir / LAST_CHECKPOINT if earlier.has_checkpoint else None
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
        except BaseException as raised:
            error = raised
            stopped = stop.received is not None or isinstance(raised, (KeyboardInterrupt, SystemExit))
            record.status = "interrupted" if stopped else "failed"
            (run_dir / ERROR_FILE).write_text(traceback.format_exc())
            if not stopped:  # a stop that came as an exception (a second Ctrl-C, submitit's requeue) is an interruption
                raise
        finally:
            elapsed = earlier.wall_time_s + time.perf_counter() - started
            progress = read_progress(run_dir)
            if error is None:  # the fit returned: how it ended is in what it reached
                record.status = _final_status(progress or {}, cfg.training.g_steps, stop)
            finish_record(record, progress, elapsed, cfg.eval.worst_score)
            record.error = _explain_status(record, stop, error, run_dir)
            write_record(record, run_dir)
            close_loggers(loggers, record, run_exit_code(record, stop, error))
    return record
