"""A progress bar measured in generator steps, the unit of the training budget."""

from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar


class BudgetProgressBar(TQDMProgressBar):
    """Lightning's bar counts batches of an epoch; each batch is one G step, and embedded datasets are endless,
    so the total shown is the smaller of the epoch length and the G steps left in the budget."""

    def __init__(self, refresh_rate: int = 50) -> None:
        super().__init__(refresh_rate=refresh_rate)

    @property
    def total_train_batches(self) -> int | float:
        remaining = self.trainer.lightning_module.remaining_g_steps
        return min(super().total_train_batches, remaining)
