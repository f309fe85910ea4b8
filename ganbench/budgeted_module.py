"""What every training module shares: a generator trained for a budget of G steps, with manual optimization.

GANModule and VAEModule add their step. The callbacks (evaluation, checkpoint, progress bar) and the run record read
only what this class defines.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganbench.nets.base import Generator


def gradient_norm(module: nn.Module) -> Tensor:
    """‖∇θ‖₂ over the module's parameters that have a gradient (0 when none has): a logged training signal."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class BudgetedModule(pl.LightningModule):
    """The G-step counters and budget (``trainer.global_step`` counts optimizer steps, not G steps), the generator
    that is evaluated (its EMA when ``ema_decay`` is set), each process's noise seed, the stop at the budget, and the
    counters and noise RNG in checkpoints, so that a resumed run continues the same random stream."""

    def __init__(self, generator: Generator, g_step_budget: int, ema_decay: float | None, seed: int) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = generator
        self.g_step_budget = g_step_budget
        self.generator_ema = (
            AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if ema_decay is not None
            else None
        )
        self.seed = seed
        self.g_steps = 0
        self.d_steps = 0
        self.diverged = False

    @property
    def sampling_generator(self) -> Generator:
        """The generator to evaluate and sample from: the EMA copy when enabled."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    @property
    def remaining_g_steps(self) -> int:
        return max(self.g_step_budget - self.g_steps, 0)

    def take_discriminator_auc(self) -> float:
        """D's accuracy since the last call; NaN without a discriminator (stored as null, left out of the result)."""
        return math.nan

    def setup(self, stage: str) -> None:
        """Each process draws its own noise from seed + rank; rank 0 matches a 1-process run."""
        torch.manual_seed(self.seed + self.global_rank)

    def on_train_batch_start(self, batch: Tensor, batch_idx: int) -> int | None:
        """A run resumed with its budget already spent takes no further step (-1 ends the epoch in Lightning)."""
        if self.remaining_g_steps == 0:
            self.trainer.should_stop = True
            return -1
        return None

    @property
    def training_curves_due(self) -> bool:
        """Every ``trainer.log_every_n_steps`` G steps."""
        return self.g_steps % self.trainer.log_every_n_steps == 0

    def log_training_curves(self, values: dict[str, Tensor]) -> None:
        """Training curves logged at the G step, so they share the evaluation's x-axis in every logger (the step of
        Lightning's own ``self.log`` counts batches from 0: one behind, and lost on resume in W&B's offline runs)."""
        logged = {name: torch.as_tensor(value).detach().item() for name, value in values.items()}
        for logger in self.loggers:
            logger.log_metrics(logged, step=self.g_steps)

    def count_generator_step(self) -> None:
        """After each G optimizer step: the EMA follows G, and the step counts against the budget."""
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        self.g_steps += 1

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_steps"] = {"g_steps": self.g_steps, "d_steps": self.d_steps}
        checkpoint["gan_rng"] = {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Only rank 0's RNG state is in the checkpoint: other ranks re-derive a distinct stream from it."""
        self.g_steps = checkpoint["gan_steps"]["g_steps"]
        self.d_steps = checkpoint["gan_steps"]["d_steps"]
        if self.global_rank == 0:
            torch.set_rng_state(checkpoint["gan_rng"]["cpu"])
            if checkpoint["gan_rng"]["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(checkpoint["gan_rng"]["cuda"])
        else:
            torch.manual_seed(hash((self.seed, self.global_rank, self.g_steps)) & (2**63 - 1))
