"""A sweep's jobs on a fixed number of slots: a slot starts the next job the moment its job ends, so no slot waits for
the slowest job of a batch (Hydra's launchers take batches; in a study, runs of 5 D steps per G step took 3-5× as long
as runs of 1 and left a core idle). The jobs come from an iterator that is read only when a slot is free, so a search
draws its next trial after the results that have come in (and in the same order: the draws stay reproducible).

Where the jobs run is a backend's business (``ganbench.local_jobs``, ``ganbench.slurm_jobs``). The pool owns what is
the same everywhere:
- a job that ends without a result (its process killed, a SLURM time limit, a preemption, a node lost) is launched
  again, up to ``max_resubmissions`` times; the run resumes from its checkpoint;
- a stop signal to the sweeper (SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP) starts no further job and is passed on:
  local runs stop with a checkpoint and the pool waits for them; SLURM jobs go on without the sweeper. Either way the
  pool then raises ``SweepStopped``, and launching the same command again resumes the sweep.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, Protocol

from hydra.core.utils import JobReturn

from ganbench.interruption import STOP_SIGNALS, exit_code


@dataclass(frozen=True)
class Job:
    """One job of a sweep: its number (``hydra.job.num``; a search's trial number) and its Hydra overrides."""

    num: int
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Ended:
    """A job that ended: Hydra's ``JobReturn`` of the task; else ``crash`` says how it crashed outside the task, and
    with neither the job gave no result in any of its ``launches``."""

    job: Job
    result: JobReturn | None
    crash: str | None
    log: str
    launches: int


class Backend(Protocol):
    """Where a pool's jobs run. A handle is whatever the backend returns from ``submit``."""

    poll_s: float  # how often the pool asks which jobs ended

    def submit(self, job: Job) -> Any:
        """Start ``job`` (or find it still running from an earlier launch of the sweep) and return its handle."""

    def ended(self, handles: Sequence[Any]) -> list[Any]:
        """The handles whose job has ended, with or without a result."""

    def result(self, handle: Any) -> tuple[JobReturn | None, str | None]:
        """(the task's JobReturn, None), or (None, why the job crashed outside the task), or (None, None): no
        result at all, a job to launch again."""

    def log(self, handle: Any) -> str:
        """Where the job's output is."""

    def stop(self, handles: Sequence[Any], signum: signal.Signals) -> bool:
        """Pass a stop signal on; True when the jobs stop and the pool must wait for them, False when they go on."""


class SweepStopped(Exception):
    """A stop signal ended the sweep before all its jobs: ``message`` says what became of them; exit 128 + signal."""

    def __init__(self, received: signal.Signals, message: str) -> None:
        super().__init__(message)
        self.received, self.exit_code = received, exit_code(received)


@dataclass
class _StopSignals:
    """Holds the sweeper's stop signals while the pool runs, so that they reach the runs instead of killing the
    sweeper; each one is passed on once, by the pool's loop (a second Ctrl-C makes local runs stop at once)."""

    received: list[signal.Signals] = field(default_factory=list)
    passed_on: int = 0
    _previous: dict[signal.Signals, Any] = field(default_factory=dict)

    def __enter__(self) -> _StopSignals:
        self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum))

    def new(self) -> list[signal.Signals]:
        """The signals received since the last call."""
        fresh, self.passed_on = self.received[self.passed_on :], len(self.received)
        return fresh


class JobPool:
    """Runs jobs on ``slots`` slots of ``backend``; ``run`` yields each job as it ends."""

    def __init__(self, backend: Backend, slots: int, max_resubmissions: int) -> None:
        self.backend, self.slots, self.max_resubmissions = backend, slots, max_resubmissions

    def run(self, jobs: Iterable[Job]) -> Iterator[Ended]:
        """Start jobs while slots are free, yield each as it ends, launch again a job that ended without a result.
        Raises SweepStopped after a stop signal, once the runs that stop have stopped."""
        waiting = iter(jobs)
        running: dict[Any, tuple[Job, int]] = {}  # handle → (job, launches so far)
        interrupted: list[Job] = []
        with _StopSignals() as stop:
            while True:
                while not stop.received and len(running) < self.slots and (job := next(waiting, None)) is not None:
                    running[self.backend.submit(job)] = (job, 1)
                for signum in stop.new():
                    if not self.backend.stop(list(running), signum):
                        raise SweepStopped(stop.received[0], _detached(running))
                if not running:
                    break
                for handle in self.backend.ended(list(running)):
                    job, launches = running.pop(handle)
                    result, crash = self.backend.result(handle)
                    if result is None and crash is None and stop.received:
                        interrupted.append(job)
                        continue
                    if result is None and crash is None and launches <= self.max_resubmissions:
                        _say(
                            f"job {job.num} ended without a result ({self.backend.log(handle)}); launching it again "
                            f"({launches + 1} of {self.max_resubmissions + 1})"
                        )
                        running[self.backend.submit(job)] = (job, launches + 1)
                        continue
                    yield Ended(job, result, crash, self.backend.log(handle), launches)
                time.sleep(self.backend.poll_s)
        if stop.received:
            raise SweepStopped(stop.received[0], _stopped(interrupted))


def _say(message: str) -> None:
    print(f"ganbench: {message}", file=sys.stderr, flush=True)


def _detached(running: dict[Any, tuple[Job, int]]) -> str:
    jobs = ", ".join(str(handle) for handle in running)
    return (
        f"the sweep stopped; its {len(running)} running jobs go on ({jobs}): launch the same command again to wait "
        "for them and run the rest, or cancel them (scancel)"
        if running
        else "the sweep stopped; launch the same command again to run the rest"
    )


def _stopped(interrupted: list[Job]) -> str:
    runs = f"{len(interrupted)} run{'' if len(interrupted) == 1 else 's'}"
    jobs = ", ".join(str(num) for num in sorted(job.num for job in interrupted))  # in job order, not ending order
    return (
        f"the sweep stopped: {runs} interrupted with a checkpoint (jobs {jobs}); "
        "launch the same command again to resume them and run the rest (finished runs are skipped)"
        if interrupted
        else "the sweep stopped; launch the same command again to run the rest (finished runs are skipped)"
    )
