"""What only a CUDA GPU exercises: 16-bit mixed precision with the gradient penalties (a loss scaler, fp16 autocast),
bf16, torch.compile's GPU kernels, the EMA generator and the DDP strategy on one GPU (NCCL). The CPU versions are in
test_resume_precision_ema.py and test_ddp.py; these launch the real CLI on trainer=gpu and read the run record.
Run by scripts/gpu_check.sh; skipped without a GPU."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from ganbench.losses import DraganPenalty, GradientPenalty, Penalty, R1Penalty, input_gradient
from ganbench.nets.infogan import InfoGANDiscriminator
from tests.helpers.cli import FAST, run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

FINITE_METRICS = ("fake_mean", "fake_std", "d_auc")  # the ring's metrics that are defined whatever G draws


def _train(run_dir: Path, *overrides: str, trainer: str = "gpu") -> dict[str, Any]:
    """One ganbench-train run of FAST's 20 G steps on the GPU; its record, checked to be a finished, finite run whose
    generator changed between its two evaluations (the evaluation's latents are fixed, so G's steps took effect)."""
    command = [f"trainer={trainer}", *FAST, *overrides, f"hydra.run.dir={run_dir}"]
    result = run_cli("ganbench-train", *command, cwd=run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", summary["error"]  # "diverged" had a D or G loss been NaN or inf
    assert summary["g_steps"] == 20
    first, last = summary["history"]
    for metrics in (first, last):
        assert all(metrics[key] is not None and math.isfinite(metrics[key]) for key in FINITE_METRICS), metrics
    assert (first["fake_mean"], first["fake_std"]) != (last["fake_mean"], last["fake_std"]), "G did not train"
    return summary


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.isfinite(w).all() for w in state.values() if w.is_floating_point())
    return state


@pytest.mark.parametrize("loss", ["wgan_gp", "dragan", "r1"])
def test_16_mixed_with_a_gradient_penalty_trains(tmp_path: Path, loss: str) -> None:
    _train(tmp_path, f"loss={loss}", "trainer.precision=16-mixed")
    _weights(tmp_path)


def _discriminator_and_images() -> tuple[InfoGANDiscriminator, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    discriminator = InfoGANDiscriminator(batch_norm=False).cuda()
    real, fake = (torch.rand(16, 1, 28, 28, device="cuda") * 2 - 1 for _ in range(2))
    return discriminator, real, fake


def test_input_gradient_under_fp16_autocast_is_the_fp32_gradient() -> None:
    """16-mixed runs the D step under fp16 autocast; every gradient penalty's inner gradient ∂D/∂x must still be taken
    in fp32 (input_gradient's promise), forward and backward, or it underflows outside the loss scaler. Two fp32
    computations agree to rounding; a backward left under the autocast does not (measured with bf16 on the CPU: 3e-3
    relative)."""
    discriminator, real, _ = _discriminator_and_images()
    fp32 = input_gradient(discriminator, real)
    with torch.autocast("cuda", dtype=torch.float16):
        mixed = input_gradient(discriminator, real)
    assert mixed.dtype == torch.float32
    assert torch.linalg.vector_norm(mixed - fp32) <= 1e-5 * torch.linalg.vector_norm(fp32)


@pytest.mark.parametrize(
    "penalty", [GradientPenalty(10.0), DraganPenalty(10.0), R1Penalty(10.0)], ids=["wgan_gp", "dragan", "r1"]
)
def test_penalty_under_fp16_autocast_is_the_fp32_penalty(penalty: Penalty) -> None:
    """The same draws give the same fp32 penalty with and without the autocast, and finite gradients for D."""
    discriminator, real, fake = _discriminator_and_images()
    values = []
    for autocast in (False, True):
        torch.manual_seed(1)  # the same α and perturbation draws in both
        with torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
            values.append(penalty(discriminator, real, fake))
    fp32, mixed = values
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, fp32, rtol=1e-5, atol=1e-8)
    mixed.backward()
    gradients = [p.grad for p in discriminator.parameters() if p.grad is not None]  # not D's last bias: ∂D/∂x lacks it
    assert gradients and all(torch.isfinite(g).all() for g in gradients)


@pytest.mark.parametrize("loss", ["ns", "wgan_gp"])
def test_bf16_mixed_trains(tmp_path: Path, loss: str) -> None:
    _train(tmp_path, f"loss={loss}", "trainer.precision=bf16-mixed")
    _weights(tmp_path)


@pytest.mark.parametrize("loss", ["ns", "wgan_gp"])
def test_compiled_networks_train(tmp_path: Path, loss: str) -> None:
    """torch.compile's CUDA kernels: G and D for NS; G only next to WGAN-GP's double backward."""
    _train(tmp_path, f"loss={loss}", "training.compile=true")


def test_ema_generator_trains_and_is_checkpointed(tmp_path: Path) -> None:
    _train(tmp_path, "training.ema_decay=0.999")
    weights = _weights(tmp_path)
    assert weights["generator_ema.n_averaged"].item() == 20
    ema = {
        k.removeprefix("generator_ema.module."): v for k, v in weights.items() if k.startswith("generator_ema.module.")
    }
    trained = {k.removeprefix("generator."): v for k, v in weights.items() if k.startswith("generator.")}
    assert ema.keys() == trained.keys()
    assert any(not torch.equal(ema[k], trained[k]) for k in trained if trained[k].is_floating_point())


def test_ddp_trainer_config_on_one_gpu(tmp_path: Path) -> None:
    """conf/trainer/ddp.yaml (spawned workers, NCCL) on one GPU: training, evaluation and the record."""
    summary = _train(tmp_path, "trainer.devices=1", "loss=wgan_gp", trainer="ddp")
    assert summary["d_steps"] == 100
    assert [entry["g_step"] for entry in summary["history"]] == [10, 20]
    assert summary["protocol"]["scorers"]["mixture"]["num_modes"] == 8
