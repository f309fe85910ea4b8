"""``launcher=slurm``: each job of a sweep a SLURM batch job, submitted with submitit.

What SLURM does to a job and what the pool does about it:
- a job that ends with a result (the run completed, diverged or failed) reports it through submitit's result file;
- a job that ends without one (its run stopped by SIGTERM or the SIGUSR2 time-limit warning with a checkpoint,
  ``scancel --signal``, a time limit, a node failure) is submitted again by the pool and resumes from its checkpoint;
- a job that SLURM requeues itself (``scontrol requeue``, preemption with requeue) keeps its id and stays in
  ``squeue``: the pool waits for it. The pool reads job states from ``squeue``, which every cluster has, so a
  cluster without accounting (``sacct``) never leaves a sweep waiting for a job that is gone;
- the sweeper stopped or killed: the jobs go on. Their ids are kept in ``<folder>/slurm_jobs.json``, and the same
  command launched again waits for the ones still queued or running instead of submitting them twice.

Resources are checked against the partition's nodes before anything is submitted: a job that no node can hold (or
longer than the partition's time limit) would otherwise wait in the queue forever.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
from hydra.core.utils import JobReturn
from submitit.core.utils import FailedJobError, UncompletedJobError

from ganbench.atomic import atomic_path
from ganbench.errors import UserError
from ganbench.job_pool import Job

# submitit's parameters shared by all its executors; every other key is SLURM's own (prefixed slurm_ for submitit).
_GENERIC = {"timeout_min", "mem_gb", "nodes", "cpus_per_task", "gpus_per_node", "tasks_per_node", "name"}
# squeue's states of a job that has ended (https://slurm.schedmd.com/squeue.html#SECTION_JOB-STATE-CODES); any other
# state (pending, running, completing, requeued, suspended...) is a job that will still run or report.
_ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}
_STATE_FILE = "slurm_jobs.json"


class SlurmError(UserError):
    """SLURM cannot run the sweep as configured (no SLURM here, an unknown partition, resources no node has)."""


def _run(command: list[str]) -> str:
    """A SLURM command's output; a SlurmError naming the command when it fails or is missing."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SlurmError(f"launcher=slurm needs SLURM's {command[0]} on PATH, and this machine has none") from None
    if done.returncode != 0:
        raise SlurmError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _minutes(limit: str) -> float:
    """sinfo's time limit ("infinite", "30:00", "4:00:00", "2-00:00:00") in minutes."""
    if limit in ("infinite", "UNLIMITED", "n/a"):
        return float("inf")
    days, _, clock = limit.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    seconds = sum(value * 60**power for power, value in enumerate(reversed(parts)))
    return (int(days or 0) * 86400 + seconds) / 60


def _gpus(gres: str) -> int:
    """GPUs per node in sinfo's GRES column, e.g. "gpu:a100:4(S:0-1)" or "(null)"."""
    return sum(int(match) for match in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))


def check_fits(parameters: dict[str, Any]) -> None:
    """Refuse, before any submission, a job that the partition can never start."""
    partition = parameters.get("partition")
    rows = _run(["sinfo", "--noheader", "--format=%P|%c|%m|%G|%l|%D"]).split()
    by_partition: dict[str, list[list[str]]] = {}
    for row in rows:
        name, *values = row.split("|")
        by_partition.setdefault(name, []).append(values)
    default = next((name.rstrip("*") for name in by_partition if name.endswith("*")), None)
    wanted = partition or default
    nodes = by_partition.get(wanted or "", []) or by_partition.get(f"{wanted}*", [])
    if not nodes:
        known = ", ".join(name.rstrip("*") for name in by_partition) or "none"
        raise SlurmError(
            f"hydra.launcher.slurm.partition={partition}: no such partition on this cluster (sinfo lists: {known}); "
            "set hydra.launcher.slurm.partition=<name>"
        )
    cpus = int(parameters.get("cpus_per_task") or 1) * int(parameters.get("tasks_per_node") or 1)
    memory_mb = float(parameters.get("mem_gb") or 0) * 1024
    gpus = int(parameters.get("gpus_per_node") or 0)
    fitting = [row for row in nodes if int(row[0]) >= cpus and float(row[1]) >= memory_mb and _gpus(row[2]) >= gpus]
    if not fitting:
        largest = ", ".join(f"{row[0]} CPUs, {int(row[1]) // 1024} GB, {_gpus(row[2])} GPUs" for row in nodes)
        raise SlurmError(
            f"a job asks for {cpus} CPUs, {memory_mb / 1024:g} GB and {gpus} GPUs per node, and no node of partition "
            f"{wanted} has that ({largest}): SLURM would keep it pending forever. Lower hydra.launcher.slurm."
            "cpus_per_task / mem_gb / gpus_per_node (launcher=slurm_gpu for GPU runs) or choose another partition"
        )
    limit = min(_minutes(row[3]) for row in nodes)
    if float(parameters.get("timeout_min") or 0) > limit:
        raise SlurmError(
            f"hydra.launcher.slurm.timeout_min={parameters['timeout_min']} is over partition {wanted}'s time limit "
            f"({nodes[0][3]}): SLURM would keep the jobs pending forever. Set a timeout_min within it; a run longer "
            "than that is resubmitted and resumes from its checkpoint"
        )
    if int(parameters.get("nodes") or 1) > sum(int(row[4]) for row in nodes):
        raise SlurmError(f"hydra.launcher.slurm.nodes={parameters['nodes']} is more than partition {wanted} has")


@dataclass(eq=False)
class SlurmHandle:
    """A handle: the job and its submitit job (whose id may belong to a job submitted by an earlier launch)."""

    job: Job
    slurm_job: submitit.SlurmJob
    ended_since: float | None = field(default=None)

    def __str__(self) -> str:
        return self.slurm_job.job_id


class SlurmJobs:
    """The backend of ``JobPool`` for SLURM; ``folder`` (shared with the compute nodes) keeps submitit's files."""

    poll_s = 1.0
    state_poll_s = 5.0  # squeue at most this often: one call for all the sweep's jobs

    def __init__(
        self, folder: Path, runner: Callable[[Job], JobReturn], parameters: dict[str, Any], result_wait_s: float
    ) -> None:
        check_fits(parameters)
        self.folder, self.runner, self.result_wait_s = folder, runner, result_wait_s
        self.executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
        requested = {key: value for key, value in parameters.items() if not (key == "gpus_per_node" and not value)}
        try:
            self.executor.update_parameters(
                **{key if key in _GENERIC else f"slurm_{key}": value for key, value in requested.items()}
            )
        except ValueError as error:
            raise SlurmError(f"hydra.launcher.slurm: {error}") from None
        self._states_read = float("-inf")
        self._known = self._read_known()

    def _read_known(self) -> dict[str, dict[str, Any]]:
        """The jobs earlier launches of this sweep submitted: job number → SLURM job id and overrides."""
        try:
            return json.loads((self.folder / _STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _remember(self, job: Job, job_id: str) -> None:
        self._known[str(job.num)] = {"job_id": job_id, "overrides": list(job.overrides)}
        with atomic_path(self.folder / _STATE_FILE) as temporary:
            temporary.write_text(json.dumps(self._known, indent=1))

    def submit(self, job: Job) -> SlurmHandle:
        known = self._known.get(str(job.num))
        if known is not None and known["overrides"] == list(job.overrides):
            state = (self._read_states([known["job_id"]]) or {}).get(known["job_id"])
            if state is not None and state not in _ENDED:  # still queued or running since an earlier launch
                return SlurmHandle(job, submitit.SlurmJob(folder=self.folder / "%j", job_id=known["job_id"]))
        try:
            slurm_job = self.executor.submit(self.runner, job)
        except Exception as error:  # sbatch refused it: bad input, named by SLURM
            raise SlurmError(f"sbatch refused job {job.num}: {str(error).strip().splitlines()[-1]}") from None
        self._remember(job, slurm_job.job_id)
        return SlurmHandle(job, slurm_job)

    def _read_states(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        """squeue's state of each job it still lists (an ended job drops out after the cluster's MinJobAge, and
        squeue drops unknown ids silently, or fails with "Invalid job id" when asked for one alone); None when the
        controller did not answer, so that a busy controller never makes running jobs look ended."""
        try:
            done = subprocess.run(
                ["squeue", "--noheader", "--states=all", "--format=%i|%T", f"--jobs={','.join(job_ids)}"],
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            return None
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            return None
        states = dict(line.split("|", 1) for line in done.stdout.split() if "|" in line)
        return {job_id: states[job_id] for job_id in job_ids if job_id in states}

    def ended(self, handles: Sequence[SlurmHandle]) -> list[SlurmHandle]:
        waiting = [h for h in handles if not h.slurm_job.paths.result_pickle.exists()]
        ended = [h for h in handles if h not in waiting]
        now = time.monotonic()
        if waiting and now - self._states_read >= self.state_poll_s:
            self._states_read = now
            states = self._read_states([h.slurm_job.job_id for h in waiting])
            for handle in waiting if states is not None else []:
                state = states.get(handle.slurm_job.job_id)
                gone = state is None or state in _ENDED
                handle.ended_since = (handle.ended_since or now) if gone else None
        ended += [h for h in waiting if h.ended_since is not None and now - h.ended_since >= self.result_wait_s]
        return ended

    def result(self, handle: SlurmHandle) -> tuple[JobReturn | None, str | None]:
        if not handle.slurm_job.paths.result_pickle.exists():
            return None, None
        try:
            return handle.slurm_job.result(), None
        except FailedJobError as error:
            return None, f"crashed outside the run: {str(error).strip().splitlines()[-1]}"
        except UncompletedJobError:
            return None, None

    def log(self, handle: SlurmHandle) -> str:
        return str(handle.slurm_job.paths.stderr)

    def stop(self, handles: Sequence[SlurmHandle], signum: signal.Signals) -> bool:
        """SLURM jobs go on without the sweeper; launching the sweep again waits for them."""
        return False
