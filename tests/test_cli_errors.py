"""Bad input stops ganbench-train before training: one clear line naming the key and the allowed range, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganbench.validate import ConfigError, validate
from tests.conftest import FAST, run_cli

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
]


@pytest.mark.parametrize(("overrides", "key", "allowed"), INVALID)
def test_validate_names_key_and_range(make_config, overrides: str, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(make_config(*overrides.split()))
    assert key in str(info.value) and allowed in str(info.value)


def test_defaults_are_valid(make_config) -> None:
    validate(make_config())


@pytest.mark.parametrize(("overrides", "key", "allowed"), [INVALID[0], INVALID[2], INVALID[3], INVALID[5], INVALID[9]])
def test_cli_rejects_invalid_value(tmp_path: Path, overrides: str, key: str, allowed: str) -> None:
    result = run_cli("ganbench-train", *overrides.split(), *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert f"ganbench: invalid config: {key}=" in result.stderr and allowed in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run" / "checkpoints").exists(), "no training may start"


def test_cli_lists_choices_for_unknown_loss(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", "loss=wgan-gp", *FAST, cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'loss/wgan-gp'" in result.stderr
    for choice in ("mm", "ns", "lsgan", "wgan", "wgan_gp", "hinge", "dragan", "r1"):
        assert f"\t{choice}\n" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_unknown_key(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", "optim.learning_rate=1e-3", *FAST, cwd=tmp_path)
    assert result.returncode != 0
    assert "optim.learning_rate" in result.stderr and "Traceback" not in result.stderr
