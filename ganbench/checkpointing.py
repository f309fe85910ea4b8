"""Checkpoints a preempted run can resume from: written every N generator steps and at the end, atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Timer

from ganbench.module import GANModule


class PeriodicCheckpoint(pl.Callback):
    """Keeps ``path`` (e.g. checkpoints/last.ckpt) at most ``every_n_g_steps`` G steps old. Written to a temporary
    file and renamed, so a kill during the write leaves the previous checkpoint intact."""

    def __init__(self, path: str | Path, every_n_g_steps: int) -> None:
        self.path = Path(path)
        self.every_n_g_steps = every_n_g_steps

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GANModule, *args: object) -> None:
        if pl_module.g_steps % self.every_n_g_steps == 0:
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        self.save(trainer)

    def save(self, trainer: pl.Trainer) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        trainer.save_checkpoint(partial)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(partial, self.path)


class LaunchTimeLimit(Timer):
    """Lightning's Timer, counted per launch rather than over the run's life: a run stopped at the limit (a SLURM job's
    time, less a margin) resumes with the full allowance when launched again, instead of stopping at once."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Ignore the time spent by earlier launches."""
