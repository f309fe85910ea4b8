"""``launcher=parallel``: each job of a sweep in a process of its own on this machine.

Each job runs ``python -m ganbench.local_jobs <job file>``, in a session of its own: a terminal's Ctrl-C (or an ssh
session's hang-up) reaches the sweeper alone, which passes the signal on to every run (``JobPool``), so each stops at
a G step boundary with a checkpoint instead of dying mid-write. A job also stops that way when the sweeper dies
without passing anything on (SIGKILL, out of memory): Linux sends it SIGTERM then (``PR_SET_PDEATHSIG``), so no run
trains on as an orphan that a relaunch would find "in use".

The job file holds the pickled task and the job; the process writes ``("ok", JobReturn)`` or ``("error", traceback)``
to the result file beside it, and nothing when it was stopped (the pool then resumes it or counts it interrupted).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cloudpickle
from hydra.core.utils import JobReturn

from ganbench.atomic import atomic_path
from ganbench.job_pool import Job

_PR_SET_PDEATHSIG = 1
_PARENT_ENV = "GANBENCH_SWEEPER_PID"


@dataclass(eq=False)
class LocalJob:
    """A handle: the job, its process and its files."""

    job: Job
    process: subprocess.Popen[bytes]
    result_file: Path
    log_file: Path
    log: IO[bytes]

    def __str__(self) -> str:
        return f"job {self.job.num} (process {self.process.pid})"


class LocalProcesses:
    """The backend of ``JobPool`` for processes on this machine; ``folder`` keeps each job's files and log."""

    poll_s = 0.2

    def __init__(self, folder: Path, runner: Callable[[Job], JobReturn]) -> None:
        self.folder, self.runner = folder, runner
        folder.mkdir(parents=True, exist_ok=True)

    def submit(self, job: Job) -> LocalJob:
        job_file = self.folder / f"{job.num}.job"
        result_file, log_file = job_file.with_suffix(".result"), job_file.with_suffix(".log")
        result_file.unlink(missing_ok=True)
        with atomic_path(job_file) as temporary:
            temporary.write_bytes(cloudpickle.dumps((self.runner, job)))
        log = log_file.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "ganbench.local_jobs", str(job_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, _PARENT_ENV: str(os.getpid())},
        )
        return LocalJob(job, process, result_file, log_file, log)

    def ended(self, handles: Sequence[LocalJob]) -> list[LocalJob]:
        ended = [handle for handle in handles if handle.process.poll() is not None]
        for handle in ended:
            handle.log.close()
        return ended

    def result(self, handle: LocalJob) -> tuple[JobReturn | None, str | None]:
        if not handle.result_file.exists():
            return None, None
        kind, value = cloudpickle.loads(handle.result_file.read_bytes())
        return (value, None) if kind == "ok" else (None, f"crashed outside the run: {value.strip().splitlines()[-1]}")

    def log(self, handle: LocalJob) -> str:
        return str(handle.log_file)

    def stop(self, handles: Sequence[LocalJob], signum: signal.Signals) -> bool:
        for handle in handles:
            if handle.process.poll() is None:
                handle.process.send_signal(signum)
        return True


def _stop_with_the_sweeper() -> None:
    """Ask Linux for SIGTERM when the sweeper dies; stop at once if it died before the request was in place."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if str(os.getppid()) != os.environ.get(_PARENT_ENV):
        sys.exit(128 + int(signal.SIGTERM))


def main(job_file: Path) -> None:
    """Run one job and write its result; a stopped run exits with 128 + signal and writes none."""
    _stop_with_the_sweeper()
    runner, job = cloudpickle.loads(job_file.read_bytes())
    try:
        outcome = ("ok", runner(job))
    except Exception:
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        outcome = ("error", trace)
    with atomic_path(job_file.with_suffix(".result")) as temporary:
        temporary.write_bytes(cloudpickle.dumps(outcome))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
