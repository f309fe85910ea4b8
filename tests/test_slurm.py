"""launcher=slurm against a real SLURM: the one-node cluster of scripts/slurm_local.sh (.ci/run starts it). Sweeps
complete, preemption and signals resume runs, a failing job is a record, a sweeper killed and relaunched finds its
jobs, and what SLURM could never start is refused before anything is submitted."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from ganbench.slurm_jobs import SlurmError, check_fits
from tests.helpers.cli import FAST, read_record, run_cli, start_cli, wait_until
from tests.helpers.slurm import sacct_states, squeue_ids, usable_cluster

pytestmark = pytest.mark.slow

# The test cluster's files are local: a job's result is there when SLURM says it ended.
SLURM = [
    "launcher=slurm",
    "hydra.launcher.slurm.partition=cpu",
    "hydra.launcher.slurm.mem_gb=1",
    "hydra.launcher.result_wait_s=1",
]
# A run long enough to be signalled mid-way: progress.json after its first evaluation, a checkpoint every 100 G steps.
LONG = ["eval.every_n_g_steps=100", "training.checkpoint_every_n_g_steps=100", "logger=none", "eval.num_samples=200"]


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> str:
    name, why_not = usable_cluster()
    if name is None:
        pytest.skip(why_not)
    return name


def sweep_args(sweep: Path, *args: str) -> list[str]:
    """ganbench-train's arguments for a sweep on the test cluster into ``sweep``."""
    return ["-m", *SLURM, f"hydra.sweep.dir={sweep}", *args]


def start(sweep: Path, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return start_cli("ganbench-train", *sweep_args(sweep, *args), cwd=cwd)


def finish(process: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def job_id(sweep: Path, num: int) -> str:
    """The SLURM id of job ``num``'s latest submission."""
    return json.loads((sweep / ".jobs" / "slurm_jobs.json").read_text())[str(num)]["job_id"]


def progress(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "progress.json").read_text())["g_steps"]
    except (OSError, ValueError, KeyError):
        return 0


def no_traceback_in(sweep: Path, *outputs: str) -> None:
    logs = [path.read_text(errors="replace") for path in (sweep / ".jobs").rglob("*.err")]
    assert not [text for text in (*outputs, *logs) if "Traceback" in text]


def test_a_sweep_of_two_losses_runs_as_slurm_jobs_with_records(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli("ganbench-train", *sweep_args(sweep, "loss=ns,wgan", *FAST), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [read_record(sweep / str(n))["loss"] for n in (0, 1)] == ["ns", "wgan"]
    assert all(read_record(sweep / str(n))["status"] == "completed" for n in (0, 1))
    assert result.stdout.count("completed after 20 G steps") == 2  # each job's line, printed as it ends
    for n in (0, 1):
        assert sacct_states(job_id(sweep, n)) == ["COMPLETED"]
        script = (sweep / ".jobs" / job_id(sweep, n) / f"{job_id(sweep, n)}_submission.sh").read_text()
        assert "#SBATCH --signal=USR2@120" in script and "#SBATCH --cpus-per-task=1" in script
        assert "gpus" not in script


def test_scontrol_requeue_resumes_the_run_to_the_metrics_of_an_uninterrupted_one(tmp_path: Path) -> None:
    """SLURM's own requeue (SIGTERM, same job id, started again): the sweep waits for it, the run resumes."""
    args = ["training.g_steps=400", "cpu_threads=1", *LONG]
    sweep = tmp_path / "sweep"
    process = start(sweep, "seed=3", *args, cwd=tmp_path)
    wait_until(lambda: progress(sweep / "0") >= 100, process, "the run trains")
    subprocess.run(["scontrol", "requeue", job_id(sweep, 0)], check=True)
    code, stdout, stderr = finish(process)
    assert code == 0, stderr[-3000:]
    assert "launching it again" not in stderr  # SLURM restarted the same job; the sweeper did not submit another
    assert sacct_states(job_id(sweep, 0))[-1] == "COMPLETED" and len(sacct_states(job_id(sweep, 0))) == 2
    resumed = read_record(sweep / "0")
    assert resumed["status"] == "completed" and [e["g_step"] for e in resumed["history"]] == list(range(100, 401, 100))

    uninterrupted = run_cli("ganbench-train", "seed=3", *args, f"hydra.run.dir={tmp_path / 'reference'}", cwd=tmp_path)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    assert resumed["history"] == read_record(tmp_path / "reference")["history"]
    no_traceback_in(sweep, stdout, stderr)


def test_signals_to_jobs_checkpoint_and_the_sweep_resubmits_them_until_every_run_finishes(tmp_path: Path) -> None:
    """scancel --signal=USR1 and =TERM (a job the scheduler stops without requeueing it), then the time-limit warning
    (SIGUSR2, what --signal=USR2@N sends): each run stops with a checkpoint, its job ends without a result, the
    sweeper submits it again and it resumes."""
    sweep = tmp_path / "sweep"
    process = start(sweep, "seed=1,2", "training.g_steps=800", *LONG, cwd=tmp_path)
    wait_until(lambda: progress(sweep / "0") >= 200 and progress(sweep / "1") >= 200, process, "both runs train")
    first = {0: job_id(sweep, 0), 1: job_id(sweep, 1)}
    subprocess.run(["scancel", "--signal=USR1", first[0]], check=True)
    subprocess.run(["scancel", "--signal=TERM", first[1]], check=True)
    wait_until(lambda: job_id(sweep, 0) != first[0], process, "job 0 is submitted again")
    stopped_at = read_record(sweep / "0")["g_steps"]
    wait_until(lambda: progress(sweep / "0") > stopped_at, process, "job 0 trains again")
    subprocess.run(["scancel", "--signal=USR2", job_id(sweep, 0)], check=True)
    code, stdout, stderr = finish(process)

    assert code == 0, stderr[-3000:]
    for n, names in ((0, ("SIGUSR1", "SIGUSR2")), (1, ("SIGTERM",))):
        assert stderr.count(f"job {n} ended without a result") == len(names)
        finished = read_record(sweep / str(n))
        assert finished["status"] == "completed" and finished["g_steps"] == 800
        assert [e["g_step"] for e in finished["history"]] == list(range(100, 801, 100))
    logs = "".join(path.read_text() for path in (sweep / ".jobs").rglob("*_log.*"))
    assert all(f"interrupted by {name}" in logs for name in ("SIGUSR1", "SIGUSR2", "SIGTERM"))
    no_traceback_in(sweep, stdout, stderr)


def test_a_job_that_fails_is_a_failed_record_and_one_that_never_reports_ends_the_sweep_with_one_line(
    tmp_path: Path,
) -> None:
    failing = run_cli(
        "ganbench-train", *sweep_args(tmp_path / "failing", "trainer.precision=16-mixed", *FAST), cwd=tmp_path
    )
    assert failing.returncode == 0, failing.stderr[-3000:]  # a failed run is a result
    failed = read_record(tmp_path / "failing" / "0")
    assert failed["status"] == "failed" and "trainer.precision='16-mixed' is invalid" in failed["error"]

    never = tmp_path / "never"  # the job's shell exits before Python starts: no result, however often it is submitted
    command = sweep_args(never, "hydra.launcher.slurm.setup=[exit 3]", "hydra.launcher.max_resubmissions=1", *FAST)
    broken = run_cli("ganbench-train", *command, cwd=tmp_path)
    assert broken.returncode == 1, broken.stderr[-3000:]
    assert "job 0 ended without a result" in broken.stderr
    assert "ganbench: job 0 ended without a result 2 times" in broken.stderr
    assert broken.stderr.strip().splitlines()[-1] == "ganbench: 1 job of the sweep gave no result (see above)"
    assert "this launch: 0 ran, 1 without a result" in broken.stdout


def test_a_killed_sweeper_relaunched_skips_finished_runs_and_waits_for_its_running_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["training.g_steps=20,700,20", "hydra.launcher.slots=2", *LONG]
    process = start(sweep, *args, cwd=tmp_path)
    wait_until(lambda: (sweep / "0" / "summary.json").exists() and progress(sweep / "1") >= 100, process, "job 0 ends")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    running = job_id(sweep, 1)
    assert running in squeue_ids(), "the killed sweeper's job stopped with it"

    code, stdout, stderr = finish(start(sweep, *args, cwd=tmp_path))
    assert code == 0, stderr[-3000:]
    assert f"{sweep / '0'}: finished earlier (completed), not trained again" in stdout
    assert job_id(sweep, 1) == running, "the relaunch submitted job 1 again instead of waiting for it"
    assert [read_record(sweep / str(n))["status"] for n in range(3)] == ["completed"] * 3
    assert "this launch: 2 ran, 1 finished earlier" in stdout


def test_a_gpu_job_for_a_cpu_partition_is_refused_before_submitting(tmp_path: Path) -> None:
    """What SLURM would leave pending forever ends the launch with one line, exit 2 and nothing queued."""
    before = squeue_ids()
    overrides = ["launcher=slurm_gpu", "trainer=cpu", "hydra.launcher.slurm.partition=cpu"]
    result = run_cli("ganbench-train", *sweep_args(tmp_path / "sweep", *FAST, *overrides), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "and 1 GPUs per node" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert squeue_ids() <= before, "a job was submitted"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"partition": "cpu", "cpus_per_task": 64}, "no node of partition cpu has that"),
        ({"partition": "gpu_nodes"}, "no such partition on this cluster (sinfo lists: cpu)"),
        ({"partition": "cpu", "timeout_min": 100_000_000}, "over partition cpu's time limit"),
        ({"partition": "cpu", "nodes": 2}, "is more than partition cpu has"),
    ],
)
def test_check_fits_names_what_no_node_of_the_real_cluster_has(parameters: dict, message: str) -> None:
    with pytest.raises(SlurmError, match=re.escape(message)):
        check_fits(parameters)
    check_fits({"partition": "cpu", "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 60})  # what fits passes
