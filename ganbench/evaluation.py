"""The evaluation protocol as a Lightning callback: score fixed-latent samples every N G steps and at the end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import WandbLogger
from matplotlib.figure import Figure
from torch import Tensor

from ganbench.module import GANModule


class Scorer(Protocol):
    """What a protocol's metric object provides (see ganbench.metrics)."""

    primary: str
    tie_breakers: tuple[str, ...]
    higher_is_better: bool

    def __call__(self, samples: Tensor) -> dict[str, float]: ...

    def plot(self, samples: Tensor, title: str) -> Figure: ...


class Evaluation(pl.Callback):
    """Scores ``num_samples`` generated from latents drawn with ``latent_seed``, so every evaluation of every run
    sees the same z. Keeps the history and the best evaluation by the scorer's primary metric (then its tie
    breakers, then the earliest),
    logs ``val/<metric>`` and writes a sample image per evaluation under ``image_dir``."""

    def __init__(
        self,
        metrics: Scorer,
        num_samples: int = 2500,
        every_n_g_steps: int = 1000,
        latent_seed: int = 12345,
        image_dir: str | Path | None = None,
    ) -> None:
        self.metrics = metrics
        self.num_samples = num_samples
        self.every_n_g_steps = every_n_g_steps
        self.latent_seed = latent_seed
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.history: list[dict[str, float]] = []
        self.last_image: Path | None = None

    @property
    def final(self) -> dict[str, float] | None:
        return self.history[-1] if self.history else None

    @property
    def best(self) -> dict[str, float] | None:
        sign = 1.0 if self.metrics.higher_is_better else -1.0

        def key(entry: dict[str, float]) -> tuple[float, ...]:
            values = (entry[name] for name in (self.metrics.primary, *self.metrics.tie_breakers))
            return tuple(-math.inf if math.isnan(v) else sign * v for v in values)

        return max(self.history, key=key) if self.history else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GANModule, *args: Any) -> None:
        if pl_module.g_steps % self.every_n_g_steps == 0 and not pl_module.diverged:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        if not self.history or self.history[-1]["g_step"] != pl_module.g_steps:
            self.evaluate(trainer, pl_module)

    @torch.no_grad()
    def generate(self, pl_module: GANModule) -> Tensor:
        generator = pl_module.generator
        latent_rng = torch.Generator().manual_seed(self.latent_seed)
        z = generator.sample_latent(self.num_samples, device=torch.device("cpu"), generator=latent_rng)
        was_training = generator.training
        generator.eval()
        samples = generator(z.to(pl_module.device))
        generator.train(was_training)
        return samples.float()

    def evaluate(self, trainer: pl.Trainer, pl_module: GANModule) -> dict[str, float]:
        samples = self.generate(pl_module)
        entry = {"g_step": float(pl_module.g_steps), **self.metrics(samples)}
        self.history.append(entry)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({f"val/{k}": v for k, v in entry.items()}, step=pl_module.g_steps)
            self._save_image(trainer, samples, pl_module.g_steps, pl_module.loss.name)
        return entry

    def _save_image(self, trainer: pl.Trainer, samples: Tensor, g_step: int, loss_name: str) -> None:
        if self.image_dir is None:
            return
        self.image_dir.mkdir(parents=True, exist_ok=True)
        figure = self.metrics.plot(samples, f"{loss_name} · G step {g_step}")
        path = self.image_dir / f"g{g_step:07d}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        self.last_image = path
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/samples", [str(path)], step=g_step)
