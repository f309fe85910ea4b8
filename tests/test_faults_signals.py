"""Fault injection: real signals sent to a real ganbench-train process, and a second launch into a run's directory."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers.cli import BIN_DIR, run_cli, user_env

pytestmark = pytest.mark.slow  # every test here launches real runs in subprocesses

BUDGET = 1500
# A run long enough to be stopped mid-way: the first evaluation (step 100) writes progress.json, the signal follows.
RUN = [
    f"training.g_steps={BUDGET}",
    "eval.every_n_g_steps=100",
    "eval.num_samples=200",
    "dataset.batch_size=16",
    "training.checkpoint_every_n_g_steps=1000",
    "cpu_threads=1",
]


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    command = [str(BIN_DIR / "ganbench-train"), *args]
    return subprocess.Popen(command, cwd=cwd, env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_training(run_dir: Path, process: subprocess.Popen[str], timeout: float = 180) -> None:
    """Until the run has evaluated once (it is mid-training), failing if the process ends first."""
    deadline = time.monotonic() + timeout
    while not (run_dir / "progress.json").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not start training"
        time.sleep(0.05)


def stop(process: subprocess.Popen[str], signum: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def wandb_run_ids(run_dir: Path) -> list[str]:
    """The run id of each W&B (offline) run written in ``run_dir``: the suffix of offline-run-<time>-<id>."""
    return sorted(path.name.rsplit("-", 1)[1] for path in (run_dir / "wandb").glob("offline-run-*"))


def test_sigterm_in_a_multirun_is_interrupted_and_resumes_into_the_same_record_and_wandb_run(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0", f"hydra.sweep.dir={sweep}", "logger=wandb", *RUN]
    run_dir = sweep / "0"
    process = start(*args, cwd=tmp_path)
    wait_for_training(run_dir, process)
    code, stdout, stderr = stop(process, signal.SIGTERM)

    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "ns on ring: interrupted after" in stdout
    assert "ganbench: interrupted by SIGTERM" in stderr and "launch the same command again" in stderr
    stopped = record(run_dir)
    assert stopped["status"] == "interrupted" and 0 < stopped["g_steps"] < BUDGET
    assert stopped["history"] and stopped["final"] == stopped["history"][-1]
    assert (run_dir / "checkpoints/last.ckpt").exists()

    again = run_cli("ganbench-train", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    finished = record(run_dir)
    assert finished["status"] == "completed" and finished["g_steps"] == BUDGET
    steps = [entry["g_step"] for entry in finished["history"]]
    assert steps == list(range(100, BUDGET + 1, 100)), "the resumed history is the uninterrupted schedule"
    ids = wandb_run_ids(run_dir)
    assert len(ids) == 2 and len(set(ids)) == 1, f"both launches log to one W&B run: {ids}"
    assert OmegaConf.load(run_dir / "config.yaml").logger.id == ids[0]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR1])
def test_ctrl_c_and_sigusr1_stop_a_run_cleanly_and_a_second_launch_is_refused(tmp_path: Path, signum) -> None:
    run_dir = tmp_path / "run"
    args = [f"hydra.run.dir={run_dir}", "logger=none", *RUN]
    process = start(*args, cwd=tmp_path)
    wait_for_training(run_dir, process)

    second = run_cli("ganbench-train", *args, cwd=tmp_path)
    assert second.returncode == 2
    assert f"ganbench: {run_dir} is in use by a run that is still going (process {process.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    assert process.poll() is None, "the refused launch did not disturb the running one"

    code, _, stderr = stop(process, signum)
    assert code == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stderr
    stopped = record(run_dir)
    assert stopped["status"] == "interrupted" and f"interrupted by {signum.name}" in stopped["error"]
    assert 0 < stopped["g_steps"] < BUDGET and stopped["history"]
