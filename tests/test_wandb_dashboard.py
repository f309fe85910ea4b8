"""What the W&B dashboard will show of ganbench runs, read back from the offline runs by W&B's own reader."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import wandb
from omegaconf import DictConfig, OmegaConf

from ganbench.run import train
from ganbench.run_dir import flatten
from tests.helpers.cli import BIN_DIR, FAST, run_cli, user_env
from tests.helpers.wandb_reader import WANDB, X_AXIS, read_wandb_runs, requires_reader

pytestmark = requires_reader
WANDB_FAST = [*FAST[1:], "logger=wandb"]  # FAST: 20 G steps, evaluations at 10 and 20, curves every 5


def record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def same_value(shown: Any, recorded: Any) -> bool:
    """W&B shows NaN as the string "NaN"; the record stores it as null."""
    if recorded is None or (isinstance(recorded, float) and math.isnan(recorded)):
        return shown in (None, "NaN") or (isinstance(shown, float) and math.isnan(shown))
    return shown == pytest.approx(recorded, rel=1e-12)


def test_a_completed_run_shows_its_names_config_results_images_and_curves_at_g_steps(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    train(make_config(*WANDB_FAST), tmp_path)
    (view,) = read_wandb_runs(tmp_path)
    ran = record(tmp_path)

    assert (view.overview["state"], view.overview["exit_code"]) == ("finished", 0)
    assert view.overview["name"] == view.run["display_name"] == "ring-run-ns-t0-s0"
    assert (view.overview["project"], view.run["run_group"], view.run["job_type"]) == ("ganbench", "ring", "run")
    tags = ["study:ring", "phase:run", "loss:ns", "dataset:ring", "model:mlp", "trial:0", "seed:0"]
    assert view.overview["tags"] == tags
    assert view.run["run_id"] == OmegaConf.load(tmp_path / "config.yaml").logger.id

    shown_config = flatten({k: v for k, v in view.overview["config"].items() if k != "_wandb"})  # W&B's dotted names
    assert shown_config == flatten(OmegaConf.to_container(OmegaConf.load(tmp_path / "config.yaml")))
    panel_axes = ("optim.lr", "optim.beta1", "training.n_critic", "loss.name", "seed")  # each a single value
    assert [type(shown_config[axis]) for axis in panel_axes] == [float, int, int, str, int]

    summary = view.overview["summary"]
    assert (summary["status"], summary["g_steps"], summary["objective"]) == ("completed", 20, ran["objective"])
    for kind in ("final", "best"):
        assert {key for key in summary if key.startswith(f"{kind}/")} == {f"{kind}/{key}" for key in ran[kind]}
        assert all(same_value(summary[f"{kind}/{key}"], value) for key, value in ran[kind].items()), kind

    assert view.x_axis_metrics() == {X_AXIS}
    assert view.steps("train/") == [5, 10, 15, 20]  # G steps, as the budget counts them
    assert view.steps("val/modes") == view.steps("val/samples") == [10, 20]
    for row, entry in zip((row for row in view.history if "val/modes" in row), ran["history"], strict=True):
        assert row["val/g_step"] == entry["g_step"] and same_value(row["val/high_quality"], entry["high_quality"])
    images = [row["val/samples.filenames"] for row in view.history if "val/samples.filenames" in row]
    assert all(len(names) == 1 and (view.directory / "files" / names[0]).is_file() for names in images)


@pytest.mark.parametrize(
    ("overrides", "status", "state", "exit_code"),
    [
        (["optim.lr=1e30"], "diverged", "finished", 0),  # a result: the run ended by itself
        (["model.generator.data_dim=3"], "failed", "failed", 1),  # D expects 2-D points: a crash
    ],
)
def test_diverged_and_failed_runs_show_their_state_and_exit_code(
    make_config: Callable[..., DictConfig],
    tmp_path: Path,
    overrides: list[str],
    status: str,
    state: str,
    exit_code: int,
) -> None:
    if status == "failed":
        with pytest.raises(RuntimeError):
            train(make_config(*WANDB_FAST, *overrides), tmp_path)
    else:
        train(make_config(*WANDB_FAST, *overrides), tmp_path)
    (view,) = read_wandb_runs(tmp_path)
    assert record(tmp_path)["status"] == view.overview["summary"]["status"] == status
    assert (view.overview["state"], view.overview["exit_code"]) == (state, exit_code)


@pytest.mark.slow
def test_a_study_phase_is_one_wandb_run_per_job_grouped_by_study_and_phase_and_syncs(tmp_path: Path) -> None:
    study = tmp_path / "study"
    args = ["-m", "search=seeds", "seed=1,2", "study.name=tiny", f"study.dir={study}", *WANDB_FAST]
    result = run_cli("ganbench-train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    run_dirs = sorted(path.parent for path in study.glob("seeds/ns/*/summary.json"))
    views = [view for run_dir in run_dirs for view in read_wandb_runs(run_dir)]
    assert len(run_dirs) == len(views) == 2, "one W&B run per job"
    assert len({view.run["run_id"] for view in views}) == 2
    assert [view.overview["name"] for view in views] == ["tiny-seeds-ns-t0-s1", "tiny-seeds-ns-t0-s2"]
    assert {(view.run["run_group"], view.run["job_type"]) for view in views} == {("tiny", "seeds")}
    assert all(view.overview["state"] == "finished" for view in views)

    offline_runs = sorted(study.glob("*/*/*/wandb/offline-run-*"))  # the README's sync command
    logs = [str(log) for directory in offline_runs for log in directory.glob("run-*.wandb")]
    dry_run = subprocess.run(
        [str(WANDB), "sync", "--dry-run", *map(str, offline_runs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert f"Would sync {len(logs)} run(s)" in dry_run.stderr and all(log in dry_run.stderr for log in logs)


RESUMABLE = [*WANDB_FAST, "training.g_steps=400", "training.checkpoint_every_n_g_steps=50", "eval.every_n_g_steps=100"]


def stop_mid_run(run_dir: Path, signum: signal.Signals) -> int:
    """Launch a run, send it ``signum`` once it has evaluated twice, and launch it again to the end; the G step of
    the checkpoint it resumed from (a kill can land before the checkpoint that follows the evaluation)."""
    command = [str(BIN_DIR / "ganbench-train"), *RESUMABLE, "cpu_threads=1", f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(command, env=user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress, deadline = run_dir / "progress.json", time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if progress.exists() and json.loads(progress.read_text())["g_steps"] >= 200:
            break
        time.sleep(0.02)
    process.send_signal(signum)
    process.wait(timeout=120)
    checkpoint = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=False)["gan_steps"]["g_steps"]
    assert 0 < checkpoint < 400, "the stop must land mid-training for the test to mean anything"
    resumed = run_cli("ganbench-train", *RESUMABLE, "cpu_threads=1", f"hydra.run.dir={run_dir}", cwd=run_dir.parent)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return checkpoint


@pytest.mark.slow
def test_an_interrupted_run_resumes_into_the_same_wandb_run_with_one_continuous_history(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    stop_mid_run(run_dir, signal.SIGTERM)
    first, second = read_wandb_runs(run_dir)
    assert first.run["run_id"] == second.run["run_id"] == OmegaConf.load(run_dir / "config.yaml").logger.id
    assert (first.overview["state"], first.overview["exit_code"]) == ("failed", 128 + signal.SIGTERM)
    assert "preempting" in first.record_types and first.overview["summary"]["status"] == "interrupted"
    assert (second.overview["state"], second.overview["exit_code"]) == ("finished", 0)
    assert second.overview["summary"]["status"] == "completed"
    assert first.steps("train/") + second.steps("train/") == list(range(5, 401, 5)), "no gap, no repeat"
    assert first.steps("val/modes") + second.steps("val/modes") == [100, 200, 300, 400]


@pytest.fixture
def parent_wandb_service() -> Iterator[None]:
    """A W&B service in this process, inherited by the runs it launches (WANDB_SERVICE), as from a notebook."""
    wandb.setup()
    assert "WANDB_SERVICE" in os.environ
    yield
    wandb.teardown()


@pytest.mark.slow
def test_a_killed_run_resumes_into_the_same_wandb_run_from_its_checkpoint(
    tmp_path: Path, parent_wandb_service: None
) -> None:
    run_dir = tmp_path / "run"
    checkpoint = stop_mid_run(run_dir, signal.SIGKILL)  # with the parent's service, the id would stay "in use"
    killed, finished = read_wandb_runs(run_dir)
    assert killed.run["run_id"] == finished.run["run_id"] == OmegaConf.load(run_dir / "config.yaml").logger.id
    assert killed.overview["state"] == "running" and "exit" not in killed.record_types  # it never got to say
    assert (finished.overview["state"], finished.overview["exit_code"]) == ("finished", 0)
    assert finished.steps("train/") == list(range(checkpoint + 5, 401, 5)), "continues right after the checkpoint"
    flushed = killed.steps("train/")  # what W&B had written to its file before the kill: a prefix of the schedule
    assert flushed == list(range(5, 5 * len(flushed) + 1, 5))
