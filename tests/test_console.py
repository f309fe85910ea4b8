"""What a user sees: a run prints its progress bar in G steps and one result line, a sweep one summary line; the
libraries' chatter only with verbose=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import FAST, run_cli

WANDB_OFFLINE = [*(arg for arg in FAST if arg != "logger=none"), "logger=wandb"]  # the default logger, offline
CHATTER = ("wandb:", "💡", "LeafSpec", "GPU available", "TPU available", "weights_only", "Warning")


@pytest.mark.slow
def test_a_run_prints_a_g_step_bar_and_one_result_line(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", *WANDB_OFFLINE, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [result.stdout.strip()]  # one line
    assert result.stdout.startswith("ns on ring: completed after 20 G steps in ")
    assert "ns on ring: 100%" in result.stderr and "20/20 [" in result.stderr  # the budget, not an epoch's batches
    assert [word for word in CHATTER if word in result.stdout + result.stderr] == []
    assert (tmp_path / "run" / "wandb").is_dir()  # W&B still records the run


@pytest.mark.slow
def test_verbose_shows_the_libraries_messages(tmp_path: Path) -> None:
    result = run_cli(
        "ganbench-train", *WANDB_OFFLINE, "verbose=true", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GPU available" in result.stderr and "wandb:" in result.stderr


@pytest.mark.slow
def test_a_sweep_ends_with_one_summary_line(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "trainer.precision=32,16-mixed,32", *FAST, f"hydra.sweep.dir={sweep}"]
    result = run_cli("ganbench-train", *args, cwd=tmp_path)  # fp16 on the CPU is refused, the sweep goes on
    assert result.returncode == 0, result.stderr[-3000:]
    summary = f"{sweep}: 3 runs: 2 completed, 1 failed | this launch: 3 ran | report: ganbench-report {sweep}"
    assert result.stdout.strip().splitlines()[-1] == summary
