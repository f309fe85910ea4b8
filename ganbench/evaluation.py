"""The evaluation protocol as a Lightning callback: score fixed-latent samples every N G steps and at the end.

A protocol (``conf/eval/*.yaml``) names its scorers, how many samples they see, the latent seed, how often to
evaluate, which metric ranks evaluations and how the samples are drawn for a person to look at. Scorers stream:
samples are generated in chunks of ``batch_size`` and each rank generates its own slice of the fixed latents, so
scorers built on torchmetrics states give the same numbers on 1 or N processes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import WandbLogger
from matplotlib.figure import Figure
from torch import Tensor, nn

from ganbench.batch_norm import CHOICES as BN_STATISTICS
from ganbench.batch_norm import BatchNormStatistics, evaluation_generator
from ganbench.diagnostics import SampleDiagnostics
from ganbench.module import GANModule
from ganbench.nets.base import Generator
from ganbench.record import write_json_atomic


class Scorer(Protocol):
    """A metric family of a protocol (see ganbench.metrics). Every rank calls every method."""

    def setup(self, datamodule: pl.LightningDataModule, device: torch.device, rank: int, world_size: int) -> None:
        """Once per fit: take what the reference needs from the data (mixture means, real-image statistics), with
        this process's ``rank`` among ``world_size`` (the Trainer's), for scorers that split or place work by rank."""

    def reset(self) -> None: ...

    def update(self, fake: Tensor, labels: Tensor | None) -> None:
        """Accumulate one chunk of generated samples, with the classes a conditional G generated them for (else
        None)."""

    def compute(self, generator: Generator) -> dict[str, float]:
        """Metrics over all accumulated samples (synced across ranks); ``generator`` serves metrics that invert it."""

    def describe(self) -> dict[str, Any]:
        """Everything that decides this scorer's numbers (after setup), stored with every result."""


class SamplePlot(Protocol):
    """Draws generated samples for a person: a scatter over the modes, a grid of images."""

    def setup(self, datamodule: pl.LightningDataModule) -> None: ...

    def __call__(self, samples: Tensor, title: str, labels: Tensor | None = None) -> Figure:
        """The samples, arranged by class when ``labels`` (a conditional G's) are given."""


class Evaluation(pl.Callback):
    """Scores ``num_samples`` samples generated from latents drawn with ``latent_seed`` (the same z at every
    evaluation of every run; a class-conditional G pairs them with balanced labels 0, 1, …, K−1, 0, …), every
    ``every_n_g_steps`` G steps and at the end of training. Keeps the history and
    the best evaluation (by ``primary``, then ``tie_breakers``, then the earliest), logs ``val/<metric>`` and saves
    a sample image per evaluation under ``image_dir``. Every evaluation also carries the diagnostics of
    ``ganbench.diagnostics`` (generated vs real moments, D's accuracy, the collapsed / off-data flags). G is evaluated
    with the BatchNorm statistics ``generator_bn`` (``ganbench.batch_norm``): standing statistics are recomputed from
    ``standing_samples`` fresh latents (seed ``latent_seed + 1``) before each evaluation."""

    def __init__(
        self,
        scorers: Mapping[str, Scorer],
        primary: str,
        higher_is_better: bool,
        plot: SamplePlot,
        worst_score: float,
        tie_breakers: Sequence[str] = (),
        num_samples: int = 2500,
        batch_size: int = 500,
        every_n_g_steps: int = 1000,
        latent_seed: int = 12345,
        num_plotted: int = 2500,
        generator_bn: BatchNormStatistics = "running",
        standing_samples: int = 2000,
        num_diagnostic_real: int = 1000,
        image_dir: str | Path | None = None,
        progress_file: str | Path | None = None,
    ) -> None:
        if generator_bn not in BN_STATISTICS:
            raise ValueError(f"generator_bn must be one of {', '.join(BN_STATISTICS)}, got {generator_bn!r}")
        self.scorers = dict(scorers)
        self.primary = primary
        self.higher_is_better = higher_is_better
        self.worst_score = worst_score  # a diverged or failed run's score in a search (see ganbench.record)
        self.tie_breakers = tuple(tie_breakers)
        self.plot = plot
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.every_n_g_steps = every_n_g_steps
        self.latent_seed = latent_seed
        self.num_plotted = num_plotted
        self.generator_bn = generator_bn
        self.standing_samples = standing_samples
        self.diagnostics = SampleDiagnostics(num_diagnostic_real)
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.progress_file = Path(progress_file) if progress_file is not None else None
        self.history: list[dict[str, float]] = []
        self.last_image: Path | None = None

    def state_dict(self) -> dict[str, Any]:
        """The evaluations so far travel with the checkpoint, so a resumed run keeps its full history."""
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])

    def on_fit_start(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        self.setup_scorers(trainer.datamodule, pl_module.device, trainer.global_rank, trainer.world_size)

    def setup_scorers(
        self, datamodule: pl.LightningDataModule, device: torch.device, rank: int = 0, world_size: int = 1
    ) -> None:
        """Give the scorers, the diagnostics and the plot what they take from the data, once per fit."""
        for scorer in self.scorers.values():
            if isinstance(scorer, nn.Module):
                scorer.to(device)
            scorer.setup(datamodule, device, rank, world_size)
        self.diagnostics.setup(datamodule.reference_samples(self.diagnostics.num_real), device)
        self.plot.setup(datamodule)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GANModule, *args: Any) -> None:
        if pl_module.g_steps % self.every_n_g_steps == 0 and not pl_module.diverged:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        """The final evaluation of a spent budget or a diverged run. A run stopped from outside (a signal, the time
        limit) is not evaluated off schedule: its history stays that of the same run left uninterrupted."""
        ended = pl_module.remaining_g_steps == 0 or pl_module.diverged
        if ended and (not self.history or self.history[-1]["g_step"] != pl_module.g_steps):
            self.evaluate(trainer, pl_module)
        self._write_progress(trainer, pl_module)

    def describe(self) -> dict[str, Any]:
        """The full protocol, so numbers from different runs are comparable or visibly not."""
        return {
            "num_samples": self.num_samples,
            "latent_seed": self.latent_seed,
            "every_n_g_steps": self.every_n_g_steps,
            "primary": self.primary,
            "higher_is_better": self.higher_is_better,
            "worst_score": self.worst_score,
            "tie_breakers": list(self.tie_breakers),
            "generator_bn": self.generator_bn,
            "standing_samples": self.standing_samples if self.generator_bn == "standing" else None,
            "scorers": {name: scorer.describe() for name, scorer in self.scorers.items()},
            "diagnostics": self.diagnostics.describe(),
        }

    def _write_progress(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        """Rank 0 keeps ``progress_file`` current: the run record is built from it, also when training ran in spawned
        processes (DDP spawn) whose callbacks and counters never return to the launching process, and it holds the
        last metrics of a run that crashes later."""
        if self.progress_file is None or not trainer.is_global_zero:
            return
        image = self.last_image.relative_to(self.progress_file.parent).as_posix() if self.last_image else None
        progress = {
            "g_steps": pl_module.g_steps,
            "d_steps": pl_module.d_steps,
            "diverged": pl_module.diverged,
            "history": self.history,
            "sample_image": image,
            "protocol": self.describe(),
        }
        write_json_atomic(progress, self.progress_file)

    def rank_latents(self, generator: Generator, rank: int, world_size: int) -> tuple[Tensor, Tensor | None]:
        """This rank's share of the protocol's fixed latents and balanced labels (every world_size-th, starting at
        ``rank``); the labels are None for an unconditional G."""
        latent_rng = torch.Generator().manual_seed(self.latent_seed)
        z = generator.sample_latent(self.num_samples, device=torch.device("cpu"), generator=latent_rng)
        labels = generator.balanced_labels(self.num_samples)
        return z[rank::world_size], None if labels is None else labels[rank::world_size]

    @torch.no_grad()
    def score(
        self, trained: Generator, device: torch.device, rank: int = 0, world_size: int = 1, d_auc: float = math.nan
    ) -> tuple[dict[str, float], Tensor, Tensor | None]:
        """The protocol's metrics and the diagnostics of ``trained`` with the protocol's BatchNorm statistics, and
        the first ``num_plotted`` samples of this rank with their labels (None for an unconditional G). Every rank
        calls it; ``trained``'s mode is left as it was."""
        was_training = trained.training
        generator = evaluation_generator(
            trained, self.generator_bn, self.standing_samples, self.batch_size, seed=self.latent_seed + 1
        )
        scorers = (*self.scorers.values(), self.diagnostics)
        for scorer in scorers:
            scorer.reset()
        latents, labels = self.rank_latents(generator, rank, world_size)
        plotted: list[Tensor] = []
        for start in range(0, len(latents), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            chunk_labels = None if labels is None else labels[chunk].to(device)
            fake = generator(latents[chunk].to(device), chunk_labels).float()
            for scorer in scorers:
                scorer.update(fake, chunk_labels)
            if start < self.num_plotted:
                plotted.append(fake[: self.num_plotted - start].cpu())
        entry: dict[str, float] = {}
        for scorer in self.scorers.values():
            entry |= scorer.compute(generator)
        entry |= self.diagnostics.compute(d_auc)
        trained.train(was_training)
        samples = torch.cat(plotted)
        return entry, samples, None if labels is None else labels[: len(samples)]

    def evaluate(self, trainer: pl.Trainer, pl_module: GANModule) -> dict[str, float]:
        d_auc = pl_module.take_discriminator_auc()
        metrics, plotted, plotted_labels = self.score(
            pl_module.sampling_generator, pl_module.device, trainer.global_rank, trainer.world_size, d_auc
        )
        entry = {"g_step": float(pl_module.g_steps), **metrics}
        self.history.append(entry)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({f"val/{k}": v for k, v in entry.items()}, step=pl_module.g_steps)
            self._save_image(trainer, plotted, plotted_labels, pl_module.g_steps, pl_module.loss.name)
            self._write_progress(trainer, pl_module)
        return entry

    def _save_image(
        self, trainer: pl.Trainer, samples: Tensor, labels: Tensor | None, g_step: int, loss_name: str
    ) -> None:
        if self.image_dir is None:
            return
        self.image_dir.mkdir(parents=True, exist_ok=True)
        figure = self.plot(samples, f"{loss_name} · G step {g_step}", labels)
        path = self.image_dir / f"g{g_step:07d}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        self.last_image = path
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/samples", [str(path)], step=g_step)
