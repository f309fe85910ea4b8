"""Run the installed console scripts the way a user types them, with settings small enough for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def start_cli(script: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start an installed console script in the background, its output captured, for a test to signal or kill."""
    command = [str(BIN_DIR / script), *args]
    return subprocess.Popen(command, cwd=cwd, env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout: float = 300) -> None:
    """Poll ``condition`` until it holds; fail, naming ``what``, if ``process`` ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def read_record(run_dir: Path) -> dict[str, Any]:
    """A run directory's summary.json."""
    return json.loads((run_dir / "summary.json").read_text())
