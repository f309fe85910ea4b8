"""Preemption and resume, mixed precision and the EMA generator."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from ganbench.data.mixtures import MixtureDataModule, ring
from ganbench.losses import GANLoss, NonSaturating
from ganbench.module import GANModule
from ganbench.nets.mlp import MLPDiscriminator, MLPGenerator
from ganbench.run import build_module, train
from tests.helpers.cli import BIN_DIR, FAST
from tests.helpers.configs import LOSSES

RESUMABLE = [*FAST, "training.g_steps=400", "training.checkpoint_every_n_g_steps=50", "eval.every_n_g_steps=100"]


def _launch(run_dir: Path) -> subprocess.Popen:
    command = [str(BIN_DIR / "ganbench-train"), *RESUMABLE, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _generator_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("generator.")}


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    assert _launch(uninterrupted).wait(timeout=300) == 0

    process = _launch(killed)
    checkpoint = killed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    interrupted_at = torch.load(checkpoint, weights_only=False)["gan_steps"]["g_steps"]
    assert interrupted_at < 400, "the kill must land mid-training for this test to mean anything"

    assert _launch(killed).wait(timeout=300) == 0
    expected, resumed = (json.loads((d / "summary.json").read_text()) for d in (uninterrupted, killed))
    for key in ("status", "g_steps", "d_steps", "history", "final", "best"):
        assert resumed[key] == expected[key], key
    for name, weight in _generator_weights(uninterrupted).items():
        assert torch.equal(_generator_weights(killed)[name], weight), f"{name} differs after resume"


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
def test_bf16_mixed_run_of_every_loss_stays_finite(make_config, tmp_path: Path, loss: str) -> None:
    record = train(make_config(f"loss={loss}", "trainer.precision=bf16-mixed", *FAST), tmp_path)
    assert record.status == "completed"
    weights = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_ema_generator_follows_the_formula() -> None:
    """ema_1 = θ_1; ema_k = d·ema_(k−1) + (1 − d)·θ_k after each G step k (BN buffers averaged too)."""
    pl.seed_everything(0)
    decay = 0.9
    module = GANModule(
        MLPGenerator(hidden_dim=8, num_hidden=1),
        MLPDiscriminator(hidden_dim=8, num_hidden=1),
        GANLoss("ns", NonSaturating()),
        partial(torch.optim.Adam, lr=1e-2),
        partial(torch.optim.Adam, lr=1e-2),
        g_step_budget=5,
        ema_decay=decay,
    )
    snapshots: list[dict[str, torch.Tensor]] = []

    class Snapshot(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args) -> None:
            snapshots.append({k: v.detach().clone() for k, v in pl_module.generator.state_dict().items()})

    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Snapshot()],
    )
    trainer.fit(module, datamodule=MixtureDataModule("ring", ring(), batch_size=8))
    expected = snapshots[0]
    for snapshot in snapshots[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * snapshot[k] for k in expected}
    ema = module.sampling_generator.state_dict()
    assert module.sampling_generator is not module.generator
    for name, value in expected.items():
        torch.testing.assert_close(ema[name], value, rtol=1e-6, atol=1e-7)
    assert not torch.equal(ema["net.0.weight"], module.generator.state_dict()["net.0.weight"])


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ns", "wgan_gp"])
def test_compiled_networks_train(make_config, tmp_path: Path, loss: str) -> None:
    """torch.compile of G and D (NS), and of G only next to WGAN-GP's double backward, which compile cannot trace."""
    cfg = make_config(f"loss={loss}", "training.compile=true", *FAST)
    module = build_module(cfg)
    module.configure_model()
    assert module.generator._compiled_call_impl is not None
    assert (module.discriminator._compiled_call_impl is not None) == (loss == "ns")
    record = train(cfg, tmp_path)
    assert record.status == "completed" and record.g_steps == 20
