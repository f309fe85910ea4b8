"""Sweeps on slots (launcher=parallel): a free slot starts the next job at once, a stop signal reaches every run, a
killed job or sweeper loses no run, and the summary counts what this launch did. Real processes, real signals."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import FAST, read_record, run_cli, start_cli, wait_until

pytestmark = pytest.mark.slow  # every test here launches real sweeps in subprocesses

LONG = ["eval.every_n_g_steps=100", "training.checkpoint_every_n_g_steps=100", "logger=none", "eval.num_samples=200"]


def start_sweep(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return start_cli("ganbench-train", "-m", "launcher=parallel", *args, cwd=cwd)


def worker_pids(sweep: Path) -> list[int]:
    """The processes running this sweep's jobs (``python -m ganbench.local_jobs <sweep>/.jobs/<n>.job``)."""
    found = subprocess.run(["pgrep", "-f", f"ganbench.local_jobs {sweep}/"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_a_free_slot_starts_the_next_job_without_waiting_for_the_slowest(tmp_path: Path) -> None:
    """Job 0 trains 75× longer than jobs 1 and 2; on 2 slots, job 2 starts when job 1 ends, not when job 0 does (a
    batch of two would have waited for job 0)."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        "ganbench-train", "-m", "launcher=parallel", "training.g_steps=1500,20,20", f"hydra.sweep.dir={sweep}",
        *FAST[:1], *FAST[2:], cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert [read_record(sweep / str(n))["g_steps"] for n in range(3)] == [1500, 20, 20]
    ended = {n: (sweep / ".jobs" / f"{n}.result").stat().st_mtime for n in range(3)}
    assert ended[2] < ended[0], "job 2 waited for job 0"
    assert "this launch: 3 ran" in result.stdout
    assert result.stdout.count("completed after") == 3  # each job's result line, printed as it ends


def test_a_stop_signal_stops_every_run_of_a_search_with_a_checkpoint_and_the_relaunch_resumes_them(
    tmp_path: Path,
) -> None:
    """SIGTERM (a scheduler's or a user's kill) to the sweeper; the other stop signals: the test below."""
    signum, sweep = signal.SIGTERM, tmp_path / "runs/studies/ring/wide"
    args = ["search=lucic_wide", "search.trials_per_loss=2", "search.losses=[ns,lsgan]", "training.g_steps=400", *LONG]
    process = start_sweep(*args, cwd=tmp_path)
    training = ("ns/0", "lsgan/0")  # trials 0 and 1, on the 2 slots
    wait_until(lambda: all((sweep / run / "progress.json").exists() for run in training), process, "both train")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "the sweep stopped: 2 runs interrupted with a checkpoint (jobs 0, 1)" in stderr
    assert not worker_pids(sweep), "a run trains on after the sweep ended"
    for run in training:
        stopped = read_record(sweep / run)
        assert stopped["status"] == "interrupted" and signal.Signals(signum).name in stopped["error"]
        assert (sweep / run / "checkpoints/last.ckpt").exists()
    assert not (sweep / "ns/1").exists(), "a trial started after the signal"

    again = run_cli("ganbench-train", "-m", "launcher=parallel", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(path.name for path in (sweep / ".jobs").glob("*.log")) == ["0.log", "1.log", "2.log", "3.log"]
    finished = {run: read_record(sweep / run) for run in ("ns/0", "lsgan/0", "ns/1", "lsgan/1")}
    assert all(r["status"] in ("completed", "diverged") and r["g_steps"] > 0 for r in finished.values())
    steps = [entry["g_step"] for entry in finished["ns/0"]["history"]]
    assert steps == [100, 200, 300, 400], "the resumed run repeated or skipped evaluations"
    assert (sweep / "optimization_results.yaml").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR1, signal.SIGHUP], ids=lambda s: s.name)
def test_every_stop_signal_reaches_every_run_of_a_grid(tmp_path: Path, signum: signal.Signals) -> None:
    """Ctrl-C, the warning before a time limit and a lost terminal stop a plain multirun's runs as SIGTERM does."""
    sweep = tmp_path / "sweep"
    process = start_sweep("training.g_steps=100000", "seed=1,2", f"hydra.sweep.dir={sweep}", *LONG, cwd=tmp_path)
    wait_until(lambda: all((sweep / f"{n}/progress.json").exists() for n in (0, 1)), process, "both runs train")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr[-3000:]
    assert "the sweep stopped: 2 runs interrupted with a checkpoint (jobs 0, 1)" in stderr
    assert not worker_pids(sweep), "a run trains on after the sweep ended"
    for n in (0, 1):
        assert read_record(sweep / str(n))["status"] == "interrupted"
        assert signum.name in read_record(sweep / str(n))["error"]


def test_a_killed_sweeper_stops_its_runs_and_a_killed_job_is_launched_again(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["training.g_steps=600", "seed=1,2", f"hydra.sweep.dir={sweep}", *LONG]
    process = start_sweep(*args, cwd=tmp_path)
    wait_until(lambda: all((sweep / f"{n}/progress.json").exists() for n in (0, 1)), process, "both runs train")
    process.send_signal(signal.SIGKILL)  # no handler runs: Linux's parent-death signal stops the runs
    process.communicate(timeout=60)
    deadline = time.monotonic() + 120
    while worker_pids(sweep) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not worker_pids(sweep), "runs of a killed sweeper train on as orphans"
    assert [read_record(sweep / str(n))["status"] for n in (0, 1)] == ["interrupted", "interrupted"]

    process = start_sweep(*args, cwd=tmp_path)  # the relaunch resumes both; one of its jobs is killed mid-run
    wait_until(lambda: len(worker_pids(sweep)) == 2, process, "both jobs run")
    (victim,) = [pid for pid in worker_pids(sweep) if "0.job" in Path(f"/proc/{pid}/cmdline").read_text()]
    os.kill(victim, signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert "job 0 ended without a result" in stderr and "launching it again (2 of 3)" in stderr
    assert [read_record(sweep / str(n))["status"] for n in (0, 1)] == ["completed", "completed"]


def test_the_summary_counts_a_job_this_launch_refused(tmp_path: Path) -> None:
    """A run directory in use (another launch trains there) leaves no record of this launch: the summary says so and
    the sweep exits 2, with the job's own line on the console."""
    sweep = tmp_path / "sweep"
    (sweep / "1").mkdir(parents=True)
    with (sweep / "1" / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_cli(
            "ganbench-train", "-m", "launcher=parallel", "seed=1,2", f"hydra.sweep.dir={sweep}", *FAST, cwd=tmp_path
        )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "is in use by a run that is still going" in result.stdout + result.stderr
    assert f"{sweep}: 1 run: 1 completed | this launch: 1 ran, 1 refused" in result.stdout
    assert "1 job of the sweep refused to run" in result.stderr
