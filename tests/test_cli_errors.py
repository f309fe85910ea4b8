"""Bad input stops ganbench-train before training: one clear line naming the key and the allowed range, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ganbench.validate import ConfigError, validate
from tests.helpers.cli import FAST, run_cli

INVALID = [
    ("optim.lr=0", "optim.lr", "> 0"),
    ("optim.discriminator.lr=-1e-4", "optim.discriminator.lr", "> 0"),
    ("training.n_critic=0", "training.n_critic", ">= 1"),
    ("loss=wgan_gp loss.penalty.weight=-1", "loss.penalty.weight", ">= 0"),
    ("dataset.batch_size=0", "dataset.batch_size", ">= 1"),
    ("loss=wgan loss.constraint.clip=0", "loss.constraint.clip", "> 0"),
    ("training.g_steps=0", "training.g_steps", ">= 1"),
    ("loss.objective.real_label=1.5", "loss.objective.real_label", "in (0, 1]"),
    ("training.n_critic=2.5", "training.n_critic", "an integer"),
    ("eval.generator_bn=moving", "eval.generator_bn", "one of running, standing, batch"),
    ("eval.standing_samples=0", "eval.standing_samples", ">= 1"),
    ("eval.num_diagnostic_real=1", "eval.num_diagnostic_real", ">= 2"),
    ("cpu_threads=0", "cpu_threads", ">= 1"),
    ("optim.lr=inf", "optim.lr", "a finite number > 0"),
    ("model.generator.latent_dim=0", "model.generator.latent_dim", "an integer >= 1"),
    ("model.discriminator.hidden_dim=-3", "model.discriminator.hidden_dim", "an integer >= 1"),
    ("optim.beta1=1.5", "optim.beta1", "in [0, 1)"),
    ("optim.beta2=-0.1", "optim.beta2", "in [0, 1)"),
    ("optim.generator.betas=[0.5,1.0]", "optim.generator.betas", "a pair of numbers in [0, 1)"),
    ("model=infogan", "model.generator.image_size", "cannot be resolved"),
    ("seed=-1", "seed", "an integer in [0, 4294967295]"),
    ("seed=1.5", "seed", "an integer"),
    ("trainer.precision=17", "trainer.precision", "one of 64, 32, 16,"),
    ("trainer.precision=16-mixed", "trainer.precision", "32-true or bf16-mixed on the CPU"),
    ("trainer.devices=0", "trainer.devices", 'a number of devices >= 1, -1 (all), "auto"'),
    ("trainer.accelerator=tpux", "trainer.accelerator", "one of cpu, gpu, cuda, mps, auto"),
    ("training.time_limit=1h", "training.time_limit", '"DD:HH:MM:SS"'),
    ("training.time_limit=00:25:00:00", "training.time_limit", '"DD:HH:MM:SS"'),
    ("training.ema_decay=1", "training.ema_decay", "in (0, 1)"),
    ("dataset.mixture.std=0", "dataset.mixture.std", "> 0"),
]
MACHINE = [  # what depends on several keys or on this machine (no GPU here)
    ("trainer=gpu", "trainer.accelerator=gpu with trainer.devices=1 needs 1 CUDA GPU(s), and this machine has 0"),
    ("dataset.batch_size=7 trainer.devices=2", "dataset.batch_size=7 is not divisible by the 2 training processes"),
]


@pytest.mark.parametrize(("overrides", "key", "allowed"), INVALID)
def test_validate_names_key_and_range(make_config, overrides: str, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(make_config(*overrides.split()))
    assert key in str(info.value) and allowed in str(info.value)


@pytest.mark.parametrize(("overrides", "message"), MACHINE)
def test_validate_checks_keys_together_and_the_machine(make_config, overrides: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(make_config(*overrides.split()))


def test_defaults_are_valid(make_config) -> None:
    validate(make_config())


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "key", "allowed"), [INVALID[i] for i in (0, 2, 3, 5, 9, 13, 14)])
def test_cli_rejects_invalid_value(tmp_path: Path, overrides: str, key: str, allowed: str) -> None:
    result = run_cli("ganbench-train", *overrides.split(), *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert f"ganbench: invalid config: {key}=" in result.stderr and allowed in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run" / "checkpoints").exists(), "no training may start"


@pytest.mark.slow
def test_cli_refuses_a_gpu_trainer_without_a_gpu(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", "trainer=gpu", *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1] == f"ganbench: invalid config: {MACHINE[0][1]}. Use trainer=cpu here, "
        "or launch on a machine with GPUs"
    )


@pytest.mark.slow
def test_cli_lists_choices_for_unknown_loss(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", "loss=wgan-gp", *FAST, cwd=tmp_path)
    assert result.returncode == 2, "Hydra's refusal of the command line is bad input too"
    assert "Could not find 'loss/wgan-gp'" in result.stderr
    for choice in ("mm", "ns", "lsgan", "wgan", "wgan_gp", "hinge", "dragan", "r1"):
        assert f"\t{choice}\n" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_rejects_unknown_key(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", "optim.learning_rate=1e-3", *FAST, cwd=tmp_path)
    assert result.returncode == 2
    assert "optim.learning_rate" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_names_the_config_key_of_an_argument_a_network_refuses(tmp_path: Path) -> None:
    """A value within its rule that the network still refuses (an image size it has no geometry for) comes back from
    Hydra's instantiate as one line naming the config node, exit code 2."""
    overrides = ["experiment=triangles_cpu", "model.generator.image_size=30", f"data_root={tmp_path / 'data'}"]
    result = run_cli("ganbench-train", *overrides, *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "ganbench: model.generator is invalid: infogan supports image_size in {28, 32, 64}, got 30. "
        "Fix the value under model.generator on the command line"
    )
    assert "Traceback" not in result.stderr
