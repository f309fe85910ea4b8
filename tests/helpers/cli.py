"""Run the installed console scripts the way a user types them, with settings small enough for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def user_env() -> dict[str, str]:
    """The test process's environment, with W&B offline and Hydra's errors in one line."""
    return {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}


def run_cli(script: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (ganbench-train, ganbench-report) the way a user types it."""
    return subprocess.run(
        [str(BIN_DIR / script), *args], cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=timeout
    )
