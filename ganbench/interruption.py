"""Preemption and Ctrl-C as a clean stop: the run ends at the next step boundary with a checkpoint and a record.

SLURM sends SIGTERM on preemption and at the time limit, and a warning signal before the limit when asked to with
``--signal`` (``launcher=slurm`` asks for SIGUSR2, submitit's); a user presses Ctrl-C or loses the terminal (SIGHUP).
Lightning's own SIGTERM handling raises ``SIGTERMException`` (a ``SystemExit``) mid-loop without a checkpoint, so
``StopOnSignal`` takes these signals over for the whole run: the first one asks the trainer to stop after the current
G step (every DDP rank at the same step), a second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

import lightning.pytorch as pl

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)


def exit_code(received: signal.Signals) -> int:
    """The shell's code for a process ended by ``received`` (143 for SIGTERM, 130 for Ctrl-C): non-zero, so SLURM,
    a sweep or a shell script sees that the run did not finish."""
    return 128 + int(received)


class StopOnSignal(pl.Callback):
    """Records the first stop signal and stops training at the next G step boundary (``trainer.should_stop``), where
    ``PeriodicCheckpoint.on_train_end`` saves the checkpoint. Use as a context manager around the whole run, so a
    signal during set-up is held too; ``on_train_start`` installs the handlers again over the ones Lightning registers
    in ``fit``, in every rank."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._depth = 0  # the CLI holds signals over the whole launch, train() over the run: entered twice
        self._launcher: Any = None

    def __enter__(self) -> StopOnSignal:
        if self._depth == 0:
            self._previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
            self._install()
        self._depth += 1
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._depth -= 1
        if self._depth == 0:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def forward_to(self, trainer: pl.Trainer) -> None:
        """Pass a signal sent to this process on to the ranks it spawned (DDP spawn), as Lightning's handler does."""
        self._launcher = trainer.strategy.launcher

    def _install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for the step to end
        if self.received is None and self._launcher is not None and getattr(self._launcher, "procs", None):
            self._launcher.kill(signum)
        self.received = self.received or signal.Signals(signum)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            trainer.should_stop = True
