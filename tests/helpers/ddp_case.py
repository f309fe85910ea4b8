"""Training cases run as their own process by tests/test_ddp.py: `python -m tests.helpers.ddp_case <case> <out_dir>`.

A separate process (with a timeout in the test) keeps spawned DDP workers out of the pytest session. Each rank saves
its parameters and what it drew to <out_dir>/rank<r>.pt.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor
from torch.utils.data import DataLoader

from ganbench.data.mixtures import MixtureDataModule, ring
from ganbench.losses import GANLoss, GradientPenalty, Wasserstein
from ganbench.module import GANModule
from ganbench.nets.mlp import MLPDiscriminator, MLPGenerator

BATCH, N_CRITIC, STEPS = 8, 2, 4  # BATCH is the global batch


def _rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


class MidpointGradientPenalty(GradientPenalty):
    """WGAN-GP at α = 0.5: the penalty without its random draw, so 1 and 2 processes can be compared exactly."""

    def interpolation_weights(self, real: Tensor) -> Tensor:
        return torch.full((real.shape[0], 1), 0.5)


class TableGenerator(MLPGenerator):
    """Draws z from a fixed table, each rank its own rows of the global batch, call after call."""

    def __init__(self) -> None:
        super().__init__(hidden_dim=16, num_hidden=2)
        self.table = torch.randn((STEPS * (N_CRITIC + 1) + 1, BATCH, 2), generator=torch.Generator().manual_seed(7))
        self.calls = 0

    def sample_latent(self, n: int, device=None, generator=None) -> Tensor:
        rank, world = _rank_and_world()
        if n != BATCH // world:  # the evaluation's own draw: not part of this comparison
            return super().sample_latent(n, device, generator)
        rows = self.table[self.calls, rank * n : (rank + 1) * n]
        self.calls += 1
        return rows


class TableData(pl.LightningDataModule):
    """Global step batches (N_CRITIC × BATCH points) from a fixed table; each rank takes its share of every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.table = ring().sample(STEPS * N_CRITIC * BATCH, torch.Generator().manual_seed(3))
        self.batches_per_step = N_CRITIC

    def train_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        steps = self.table.reshape(STEPS, N_CRITIC, world, BATCH // world, 2)[:, :, rank].reshape(STEPS, -1, 2)
        return DataLoader(list(steps), batch_size=None)


class SaveRankState(pl.Callback):
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.first_draws: dict[str, Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.first_draws = {"data": batch.clone(), "z": torch.randn(4)}

    def on_train_end(self, trainer, pl_module) -> None:
        params = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        torch.save({"params": params, **self.first_draws}, self.out_dir / f"rank{trainer.global_rank}.pt")


def main(case: str, out_dir: Path) -> None:
    devices = 1 if case == "single" else 2
    pl.seed_everything(0)
    exact = case in ("single", "pair")
    loss = GANLoss("wgan_gp", Wasserstein(), MidpointGradientPenalty(10.0) if exact else GradientPenalty(10.0))
    module = GANModule(
        TableGenerator() if exact else MLPGenerator(hidden_dim=16, num_hidden=2),
        MLPDiscriminator(hidden_dim=16, num_hidden=2, batch_norm=case == "pair_bn"),
        loss,
        partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.999)),
        partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.999)),
        n_critic=N_CRITIC,
        g_step_budget=STEPS,
    )
    datamodule = TableData() if exact else MixtureDataModule("ring", ring(), batch_size=BATCH)
    strategy = (
        DDPStrategy(
            start_method="spawn", find_unused_parameters=True, forward_sync_buffers=False, process_group_backend="gloo"
        )
        if devices > 1
        else "auto"
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SaveRankState(out_dir)],
        use_distributed_sampler=False,  # TableData shards the batches itself
    )
    trainer.fit(module, datamodule=datamodule)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
