"""Shared fixtures: compose the real Hydra configs, and run the real console scripts in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ganbench.train import CONFIG_DIR

BIN_DIR = Path(sys.executable).parent
# Small, fast settings for runs inside tests; they never touch the network.
FAST = [
    "logger=none",
    "training.g_steps=20",
    "eval.every_n_g_steps=10",
    "eval.num_samples=200",
    "dataset.batch_size=16",
    "trainer.log_every_n_steps=5",
]


@pytest.fixture
def make_config() -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, exactly as ganbench-train does (without the Hydra run context)."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


def run_cli(script: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (ganbench-train, ganbench-report) the way a user types it."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [str(BIN_DIR / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
