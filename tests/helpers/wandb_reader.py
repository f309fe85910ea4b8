"""W&B's own reader of offline runs, ``wandb leet inspect`` (wandb >= 0.31): what a dashboard shows once synced.

An offline run keeps only its binary transaction log (``run-<id>.wandb``); the reader decodes it. ``--summary --json``
gives the state, exit code, name, tags, config and summary; ``--json`` gives every record, among them the run's group
and job type, the history rows and the x-axis the run defined.
"""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import BIN_DIR

WANDB = BIN_DIR / "wandb"
X_AXIS = "trainer/global_step"  # Lightning's W&B x-axis; ganbench logs every row at the G step


def _inspect(path: Path, *options: str) -> str:
    result = subprocess.run(
        [str(WANDB), "leet", "inspect", *options, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@functools.cache
def reader_missing() -> str | None:
    """Why the reader cannot be used here, or None when it can."""
    try:
        result = subprocess.run([str(WANDB), "leet", "inspect", "--help"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        return f"no wandb command next to the interpreter ({error})"
    return None if result.returncode == 0 else "the installed wandb has no `wandb leet inspect` (wandb >= 0.31)"


requires_reader = pytest.mark.skipif(reader_missing() is not None, reason=str(reader_missing()))


@dataclass(frozen=True)
class WandbRunView:
    """One offline W&B run (one launch of a ganbench run) as W&B's reader shows it."""

    directory: Path
    overview: dict[str, Any]  # --summary --json
    records: list[dict[str, Any]]  # --json

    @property
    def run(self) -> dict[str, Any]:
        """The run record: id, display name, group, job type, tags."""
        return next(record["run"] for record in self.records if record["type"] == "run")

    @property
    def history(self) -> list[dict[str, Any]]:
        return [record["history"]["item"] for record in self.records if record["type"] == "history"]

    @property
    def record_types(self) -> set[str]:
        return {record["type"] for record in self.records}

    def x_axis_metrics(self) -> set[str]:
        """The step metric of every glob the run defined: what W&B plots its charts against."""
        return {record["metric"].get("step_metric") for record in self.records if record["type"] == "metric"} - {None}

    def steps(self, prefix: str) -> list[int]:
        """The x-axis value of each history row that logs a key starting with ``prefix``, in logged order."""
        return [int(row[X_AXIS]) for row in self.history if any(key.startswith(prefix) for key in row)]


def read_wandb_runs(run_dir: Path) -> list[WandbRunView]:
    """Every offline W&B run written in ``run_dir`` (one per launch), in launch order."""
    directories = sorted((run_dir / "wandb").glob("offline-run-*"))  # offline-run-<YYYYmmdd_HHMMSS>-<id>
    return [
        WandbRunView(
            directory,
            json.loads(_inspect(directory, "--summary", "--json")),
            [json.loads(line) for line in _inspect(directory, "--json").splitlines()],
        )
        for directory in directories
    ]
