"""GANModule: the one place where a GAN training step is written.

Each Lightning batch holds ``n_critic`` real batches: the module takes one discriminator step on each, then one
generator step. Everything variant-specific comes from the loss object: objective, penalty, weight constraint, and
an objective's state such as BEGAN's k_t (updated after each D step, checkpointed, logged); networks and optimizers
come in through Hydra. The budget is counted in generator steps by the module itself, because ``trainer.global_step``
counts optimizer steps (n_critic + 1 per batch). A class-conditional run's batches also hold the real samples'
labels: G generates for the same labels, and D scores both with them (``ganbench.nets.conditioning.on_labels``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ganbench.budgeted_module import BudgetedModule, gradient_norm
from ganbench.diagnostics import pairwise_auc
from ganbench.losses import DiscriminatorLoss, GANLoss
from ganbench.nets.base import Generator
from ganbench.nets.conditioning import on_labels

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
Batch = Tensor | list[Tensor]  # samples, or [samples, labels] in a class-conditional run


def split_labels(batch: Batch) -> tuple[Tensor, Tensor | None]:
    """(samples, labels) of a training batch; labels None when the run is unconditional."""
    return (batch[0], batch[1]) if isinstance(batch, list | tuple) else (batch, None)


class GANModule(BudgetedModule):
    """Alternating GAN training with manual optimization; stops itself after ``g_step_budget`` generator steps."""

    def __init__(
        self,
        generator: Generator,
        discriminator: nn.Module,
        loss: GANLoss,
        generator_optimizer: OptimizerFactory,
        discriminator_optimizer: OptimizerFactory,
        n_critic: int = 1,
        g_step_budget: int = 1000,
        ema_decay: float | None = None,
        compile_networks: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(generator, g_step_budget, ema_decay, seed)
        self.discriminator = discriminator
        self.loss = loss
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.n_critic = n_critic
        self.compile_networks = compile_networks
        self._d_auc_sum = 0.0
        self._d_auc_steps = 0

    def configure_model(self) -> None:
        """Optional torch.compile, in place (state_dict keys unchanged). D is left eager when the loss has a penalty:
        the penalty's double backward is not supported by torch.compile."""
        if self.compile_networks:
            self.generator.compile()
            if self.loss.penalty is None:
                self.discriminator.compile()

    def take_discriminator_auc(self) -> float:
        """D's mean pairwise accuracy (``pairwise_auc``) over its steps since the last call, averaged over the
        processes; NaN when D took no step since then. Every rank must call it (it is a collective under DDP)."""
        totals = torch.tensor([self._d_auc_sum, float(self._d_auc_steps)], dtype=torch.float64, device=self.device)
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        self._d_auc_sum, self._d_auc_steps = 0.0, 0
        return (totals[0] / totals[1]).item() if totals[1] > 0 else float("nan")

    def configure_optimizers(self) -> list[Optimizer]:
        return [
            self.generator_optimizer(self.generator.parameters()),
            self.discriminator_optimizer(self.discriminator.parameters()),
        ]

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        g_opt, d_opt = self.optimizers()
        samples, labels = split_labels(batch)
        real_batches = samples.reshape(self.n_critic, -1, *samples.shape[1:])
        label_batches = [None] * self.n_critic if labels is None else labels.reshape(self.n_critic, -1)
        for real, real_labels in zip(real_batches, label_batches, strict=True):
            d_loss = self._discriminator_step(real, real_labels, d_opt)
            d_auc = pairwise_auc(d_loss.real_out, d_loss.fake_out)
            self._d_auc_sum += d_auc.item()
            self._d_auc_steps += 1
        g_loss = self._generator_step(real_batches[-1], label_batches[-1], g_opt)

        if not torch.isfinite(torch.stack([d_loss.total.detach(), g_loss.detach()])).all():
            self.diverged = True
            self.trainer.should_stop = True
            return
        if self.training_curves_due:
            self.log_training_curves(
                {
                    **{f"train/{name}": value for name, value in self.loss.logged_values().items()},
                    "train/d_loss": d_loss.total,
                    "train/g_loss": g_loss,
                    "train/penalty": d_loss.penalty,
                    "train/d_real": d_loss.real_out.mean(),
                    "train/d_fake": d_loss.fake_out.mean(),
                    "train/d_auc": d_auc,
                    "train/d_grad_norm": gradient_norm(self.discriminator),
                    "train/g_grad_norm": gradient_norm(self.generator),
                }
            )
        if self.remaining_g_steps == 0:
            self.trainer.should_stop = True

    def _discriminator_step(self, real: Tensor, labels: Tensor | None, optimizer: Any) -> DiscriminatorLoss:
        self.toggle_optimizer(optimizer)
        with torch.no_grad():
            fake = self.generator(self.generator.sample_latent(real.shape[0], device=real.device), labels)
        loss = self.loss.discriminator_loss(on_labels(self.discriminator, labels), real, fake)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss.total)
        optimizer.step()
        self.loss.after_discriminator_step(self.discriminator, loss)
        self.untoggle_optimizer(optimizer)
        self.d_steps += 1
        return loss

    def _generator_step(self, real: Tensor, labels: Tensor | None, optimizer: Any) -> Tensor:
        """One G step on a batch of ``real``'s size (and labels); ``real`` (the last D step's batch, already on the
        device) reaches D only for a relativistic objective, whose G loss compares D's outputs on real and generated
        data."""
        self.toggle_optimizer(optimizer)
        fake = self.generator(self.generator.sample_latent(real.shape[0], device=self.device), labels)
        loss = self.loss.generator_loss(on_labels(self.discriminator, labels), fake, real)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        self.untoggle_optimizer(optimizer)
        self.count_generator_step()
        return loss

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also D's accuracy since the last evaluation and the loss's state (BEGAN's k_t), so that a resumed run
        evaluates as the uninterrupted run does."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan_loss_state"] = self.loss.state_dict()
        checkpoint["gan_d_auc"] = {"sum": self._d_auc_sum, "steps": self._d_auc_steps}  # since the last evaluation

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        d_auc = checkpoint.get("gan_d_auc", {"sum": 0.0, "steps": 0})  # absent in checkpoints of earlier versions
        self._d_auc_sum, self._d_auc_steps = d_auc["sum"], d_auc["steps"]
        if "gan_loss_state" in checkpoint:  # absent in earlier versions' checkpoints: the loss keeps its initial state
            self.loss.load_state_dict(checkpoint["gan_loss_state"])
