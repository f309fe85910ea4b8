"""The SLURM cluster the SLURM tests may use: the one-node cluster of scripts/slurm_local.sh, or one named in
GANBENCH_TEST_SLURM_CLUSTER. Never a developer's real cluster by accident: the tests submit jobs to it."""

from __future__ import annotations

import os
import shutil
import subprocess

LOCAL_CLUSTER = "ganbench-local"  # scripts/slurm_local.sh's ClusterName
CLUSTER_ENV = "GANBENCH_TEST_SLURM_CLUSTER"


def cluster_name() -> str | None:
    """The name of the cluster whose controller answers here, or None."""
    if shutil.which("scontrol") is None:
        return None
    try:
        done = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ClusterName":
            return value.strip()
    return None


def usable_cluster() -> tuple[str | None, str]:
    """(the cluster's name, "") when the tests may submit to it, else (None, why not)."""
    name = cluster_name()
    allowed = {LOCAL_CLUSTER, os.environ.get(CLUSTER_ENV, LOCAL_CLUSTER)}
    if name is None:
        return None, (
            "no SLURM controller answers here: start the test cluster with `sudo bash scripts/slurm_local.sh start` "
            "(.ci/run does, as root with apt)"
        )
    if name not in allowed:
        return None, (
            f"the SLURM cluster here is {name!r}, not the test cluster {LOCAL_CLUSTER!r}: the SLURM tests submit jobs "
            f"only to a cluster started by scripts/slurm_local.sh or named in {CLUSTER_ENV}"
        )
    return name, ""


def squeue_ids() -> set[str]:
    """Ids of the jobs SLURM lists as queued or running."""
    done = subprocess.run(["squeue", "--noheader", "--format=%i"], capture_output=True, text=True, timeout=60)
    return set(done.stdout.split())


def sacct_states(job_id: str) -> list[str]:
    """Every state SLURM's accounting recorded for a job (a requeued job has one line per start)."""
    command = ["sacct", "--noheader", "--parsable2", "--duplicates", "-X", "--format=State", f"--jobs={job_id}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return done.stdout.splitlines()  # "CANCELLED by 0" is one state
