"""One progress bar per run, in generator steps against the budget: the unit of the budget for every dataset."""

from __future__ import annotations

import sys
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar
from tqdm import tqdm

from ganbench.module import GANModule


class GStepProgressBar(ProgressBar):
    """``<loss> on <dataset>: 40%|████ | 2000/5000 G steps``, on stderr so that stdout keeps the result lines.

    Lightning's own bar counts the batches of an epoch, which on an image dataset is neither the budget nor a G step
    when D takes several batches per G step. A resumed run starts the bar at the G steps already done. Where stderr
    is not a terminal (a SLURM log, CI) the bar is redrawn every 30 s, not on every update."""

    def __init__(self, description: str, refresh_rate: int = 10) -> None:
        super().__init__()
        self.description, self.refresh_rate = description, refresh_rate
        self.enabled = True
        self.bar: tqdm | None = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        if not self.enabled:
            return
        self.bar = tqdm(
            desc=self.description,
            total=pl_module.g_step_budget,
            initial=pl_module.g_steps,
            unit=" G steps",
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,
            dynamic_ncols=True,
        )

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GANModule, *args: Any) -> None:
        done = pl_module.g_steps
        if self.bar is not None and (done - self.bar.n >= self.refresh_rate or pl_module.remaining_g_steps == 0):
            self.bar.update(done - self.bar.n)

    def on_train_end(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        self._close()

    def on_exception(self, trainer: pl.Trainer, pl_module: GANModule, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
