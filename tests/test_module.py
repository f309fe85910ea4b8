"""GANModule inside a real Lightning Trainer: step ratio, data per D step, constraint, divergence, checkpoints."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ganbench.data.mixtures import MixtureDataModule, batch_seed, ring
from ganbench.losses import GANLoss, NonSaturating, Wasserstein, WeightClipping
from ganbench.module import GANModule
from ganbench.nets.mlp import MLPDiscriminator, MLPGenerator

Adam = functools.partial(torch.optim.Adam, lr=1e-3)
# A safety net only: GANModule must stop long before this many optimizer steps, or the assertions on the step
# counters fail instead of the test spinning forever on the endless mixture stream.
SAFETY_MAX_STEPS = 500


def wgan_loss() -> GANLoss:
    return GANLoss(name="wgan", objective=Wasserstein(), constraint=WeightClipping(0.01))


def make_module(
    loss: GANLoss | None = None,
    n_critic: int = 1,
    g_step_budget: int = 7,
    generator_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] = Adam,
    discriminator_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] = Adam,
) -> GANModule:
    return GANModule(
        generator=MLPGenerator(hidden_dim=16, num_hidden=1),
        discriminator=MLPDiscriminator(hidden_dim=16, num_hidden=1),
        loss=loss if loss is not None else wgan_loss(),
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        n_critic=n_critic,
        g_step_budget=g_step_budget,
    )


def fit(module: GANModule, batch_size: int = 8, **trainer_kwargs: object) -> pl.Trainer:
    datamodule = MixtureDataModule(name="ring", mixture=ring(), batch_size=batch_size)
    datamodule.batches_per_step = module.n_critic
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        max_steps=SAFETY_MAX_STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=datamodule)
    return trainer


def counting(factory: Callable[..., Optimizer], name: str, events: list[str], created: dict[str, Optimizer]):
    """Wrap an optimizer factory so that every real ``step()`` of what it creates appends ``name`` to ``events``."""

    def make(params: Iterable[nn.Parameter]) -> Optimizer:
        optimizer = factory(params)
        optimizer.register_step_post_hook(lambda *_: events.append(name))
        created[name] = optimizer
        return optimizer

    return make


@pytest.mark.parametrize("n_critic", [1, 3])
def test_discriminator_to_generator_step_ratio_is_n_critic(n_critic: int) -> None:
    pl.seed_everything(0, verbose=False)
    events: list[str] = []
    created: dict[str, Optimizer] = {}
    budget = 7
    module = make_module(
        n_critic=n_critic,
        g_step_budget=budget,
        generator_optimizer=counting(Adam, "G", events, created),
        discriminator_optimizer=counting(Adam, "D", events, created),
    )
    trainer = fit(module)

    # The optimizer counted as "G" really holds the generator's parameters, and "D" the discriminator's.
    g_params = {id(p) for group in created["G"].param_groups for p in group["params"]}
    d_params = {id(p) for group in created["D"].param_groups for p in group["params"]}
    assert g_params == {id(p) for p in module.generator.parameters()}
    assert d_params == {id(p) for p in module.discriminator.parameters()}

    assert events.count("G") == budget == module.g_steps
    assert events.count("D") == budget * n_critic == module.d_steps
    # n_critic D steps, then one G step, every training step.
    assert events == (["D"] * n_critic + ["G"]) * budget
    # It stopped itself at the budget (not through the safety limit), healthy.
    assert trainer.should_stop
    assert module.remaining_g_steps == 0
    assert not module.diverged


def test_each_discriminator_step_gets_its_own_real_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    pl.seed_everything(0, verbose=False)
    n_critic, batch_size, budget = 2, 4, 3
    module = make_module(n_critic=n_critic, g_step_budget=budget)
    seen: list[tuple[int, Tensor]] = []
    original = module.loss.discriminator_loss

    def spy(discriminator: nn.Module, real: Tensor, fake: Tensor):
        seen.append((module.g_steps, real.detach().clone()))
        assert fake.shape == real.shape  # as many fakes as reals in each D step
        return original(discriminator, real, fake)

    monkeypatch.setattr(module.loss, "discriminator_loss", spy)
    fit(module, batch_size=batch_size)

    assert len(seen) == budget * n_critic
    for step in range(budget):
        reals = [real for g_step, real in seen if g_step == step]
        assert len(reals) == n_critic
        assert all(real.shape == (batch_size, 2) for real in reals)
        assert not torch.equal(reals[0], reals[1])

    # Together they are exactly the stream's first Lightning batch, split in order: no point dropped or reused.
    generator = torch.Generator().manual_seed(batch_seed(seed=0, rank=0, index=0))
    first = ring().sample(batch_size * n_critic, generator)
    assert torch.equal(seen[0][1], first[:batch_size])
    assert torch.equal(seen[1][1], first[batch_size:])


def test_weight_clipping_holds_after_training() -> None:
    pl.seed_everything(0, verbose=False)
    module = make_module(n_critic=3, g_step_budget=5)
    initial_largest = max(p.detach().abs().max().item() for p in module.discriminator.parameters())
    assert initial_largest > 0.01  # otherwise the check below would prove nothing
    fit(module)

    params = list(module.discriminator.parameters())
    assert all(p.detach().abs().max().item() <= 0.01 for p in params)
    assert max(p.detach().abs().max().item() for p in params) == pytest.approx(0.01)


def test_divergence_stops_training_without_raising() -> None:
    pl.seed_everything(0, verbose=False)
    n_critic, budget = 2, 50
    module = make_module(loss=GANLoss(name="ns", objective=NonSaturating()), n_critic=n_critic, g_step_budget=budget)
    with torch.no_grad():
        for param in module.discriminator.parameters():
            param.fill_(math.nan)

    trainer = fit(module)

    assert module.diverged
    assert trainer.should_stop
    assert module.g_steps < budget
    assert module.g_steps == 1  # noticed at the end of the first training step
    assert module.d_steps == n_critic


def test_checkpoint_round_trip_restores_step_counters(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    module = make_module(n_critic=2, g_step_budget=4)
    trainer = fit(module)
    assert (module.g_steps, module.d_steps) == (4, 8)

    path = tmp_path / "x.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)

    restored = make_module(n_critic=2, g_step_budget=4)
    assert (restored.g_steps, restored.d_steps) == (0, 0)
    restored.on_load_checkpoint(checkpoint)
    assert (restored.g_steps, restored.d_steps) == (4, 8)
    assert restored.remaining_g_steps == 0
