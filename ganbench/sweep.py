"""A multirun as ganbench's sweeper runs it (``hydra_plugins/ganbench_sweeper/``): a grid of overrides or a search's
trials, each job launched when the launcher has a free slot, the runs an earlier launch finished skipped without
launching them, what each job reports, and the line and exit code the multirun ends with."""

from __future__ import annotations

import copy
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, get_args

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException
from optuna.trial import Trial

from ganbench.job_outcome import (
    CRASHED,
    ERRORS,
    LAUNCH_OUTCOMES,
    NO_RESULT,
    REFUSED,
    UNREPORTED,
    JobOutcome,
    finished_outcome,
)
from ganbench.job_pool import Ended, Job
from ganbench.record import Status, read_records
from ganbench.search import Study


def _no_status(record: dict[str, Any]) -> str | None:
    return None if isinstance(record.get("status"), str) else "not a run record: no status"


def sweep_summary(sweep_dir: Path, outcomes: Sequence[JobOutcome]) -> str:
    """``<dir>: 12 runs: 10 completed, 1 diverged, 1 failed | this launch: 4 ran, 8 finished earlier | report: …``:
    every run recorded in the sweep directory (earlier launches included), then what this launch's jobs did, so a
    refusal that left no record still shows."""
    read = read_records(sweep_dir, _no_status)
    counts = Counter(record["status"] for _, record in read.records)
    order = [*get_args(Status), *sorted(set(counts) - set(get_args(Status)))]
    statuses = ", ".join(f"{counts[status]} {status}" for status in order if counts[status])
    runs = len(read.records)
    line = f"{sweep_dir}: {runs} run{'' if runs == 1 else 's'}: {statuses or 'none recorded'}"
    if read.unreadable:
        line += f", {len(read.unreadable)} unreadable records"
    launched = Counter(outcome.status for outcome in outcomes)
    ran = sum(n for status, n in launched.items() if status not in LAUNCH_OUTCOMES)
    parts = [f"{ran} ran"] + [f"{launched[key]} {text}" for key, text in LAUNCH_OUTCOMES.items() if launched[key]]
    return line + f" | this launch: {', '.join(parts)} | report: ganbench-report {sweep_dir}"


class Grid:
    """A plain multirun: the product of its sweep overrides (``-m loss=mm,ns seed=1,2``), in Hydra's order."""

    def __init__(self, arguments: list[str], loader: ConfigLoader) -> None:
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
        (product,) = BasicSweeper.split_arguments(parsed, None)
        self.jobs = [Job(num, tuple(overrides)) for num, overrides in enumerate(product)]

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def tell(self, job: Job, outcome: JobOutcome) -> None:
        """A grid's jobs do not depend on each other's results."""

    def finish(self, sweep_dir: Path) -> None:
        """Nothing to save beyond the runs' records."""


class Search:
    """A study (``search=...``): each trial drawn when a slot is free to run it, told its objective when it ends."""

    def __init__(self, study: Study, arguments: list[str], n_trials: int) -> None:
        self.study, self.arguments, self.n_trials = study, arguments, n_trials
        self.trials: dict[int, Trial] = {}

    def __iter__(self) -> Iterator[Job]:
        while self.study.trials_drawn < self.n_trials:
            trial = self.study.draw()
            self.trials[trial.number] = trial
            yield Job(trial.number, (*self.arguments, *self.study.overrides(trial)))

    def tell(self, job: Job, outcome: JobOutcome) -> None:
        self.study.tell(self.trials.pop(job.num), None if outcome.status in UNREPORTED else outcome.objective)

    def finish(self, sweep_dir: Path) -> None:
        self.study.save_results(sweep_dir)


Plan = Grid | Search


def job_config(loader: ConfigLoader, sweep_config: DictConfig, job: Job) -> DictConfig:
    """The job's composed config (its ``hydra`` node included), as the job itself composes it."""
    cfg = loader.load_sweep_config(sweep_config, list(job.overrides))
    with open_dict(cfg.hydra.job):
        cfg.hydra.job.num = job.num
    return cfg


def _finished_earlier(cfg: DictConfig) -> JobOutcome | None:
    """The outcome of a job whose run an earlier launch finished; None when it must be launched (or cannot be told
    here: the job itself then says why)."""
    task = copy.deepcopy(cfg)
    with open_dict(task):
        del task["hydra"]
    try:
        return finished_outcome(Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir), task)
    except OmegaConfBaseException:
        return None


def _outcome(ended: Ended, worst_score: float) -> JobOutcome:
    """What an ended job reports; a crash outside the run and a job without a result score the worst score."""
    if ended.result is not None and ended.result.status == JobStatus.COMPLETED:
        return ended.result.return_value
    if ended.result is not None:  # the task raised past ganbench's own handling: a crash
        return JobOutcome(worst_score, CRASHED, f"ganbench: job {ended.job.num} crashed: {ended.result._return_value}")
    if ended.crash is not None:
        return JobOutcome(worst_score, CRASHED, f"ganbench: job {ended.job.num} {ended.crash}")
    line = f"ganbench: job {ended.job.num} ended without a result {ended.launches} times (the last log: {ended.log})"
    return JobOutcome(worst_score, NO_RESULT, line)


def _run_jobs(launcher: Launcher, jobs: Iterable[Job]) -> Iterator[Ended]:
    """Each job as it ends: from the launcher's slots (ganbench's launchers), or one job per call of Hydra's
    launcher interface (its basic launcher runs the job in this process)."""
    if (run := getattr(launcher, "run", None)) is not None:
        yield from run(jobs)
        return
    for job in jobs:
        (result,) = launcher.launch([list(job.overrides)], initial_job_idx=job.num)
        yield Ended(job, result, None, "this process", 1)


def run_sweep(plan: Plan, launcher: Launcher, compose: Callable[[Job], DictConfig]) -> list[JobOutcome]:
    """Run every job of ``plan``, skipping the runs an earlier launch finished; each job's outcome, in job order.
    A separate process's line is printed when its job ends (a job in this process prints its own)."""
    outcomes: dict[int, JobOutcome] = {}
    worst_scores: dict[int, float] = {}
    separate_processes = hasattr(launcher, "run")

    def to_launch() -> Iterator[Job]:
        for job in plan:
            cfg = compose(job)
            worst_scores[job.num] = float(cfg.eval.worst_score)
            if (outcome := _finished_earlier(cfg)) is None:
                yield job
                continue
            print(outcome.line, flush=True)
            plan.tell(job, outcome)
            outcomes[job.num] = outcome

    for ended in _run_jobs(launcher, to_launch()):
        outcome = _outcome(ended, worst_scores[ended.job.num])
        if separate_processes or outcome.status in UNREPORTED:  # a job in this process printed its own line
            print(outcome.line, file=sys.stderr if outcome.status in ERRORS else sys.stdout, flush=True)
        plan.tell(ended.job, outcome)
        outcomes[ended.job.num] = outcome
    return [outcomes[num] for num in sorted(outcomes)]


def sweep_exit(outcomes: Sequence[JobOutcome]) -> tuple[int, str | None]:
    """The sweep's exit code and its line: 0 when every job reported (a failed run is a result), 1 when a job crashed
    outside its run or ended without a result, 2 when a job was refused (bad input: the run directory in use or
    unreadable)."""
    statuses = Counter(outcome.status for outcome in outcomes)
    if unreported := sum(statuses[status] for status in UNREPORTED):
        return 1, f"ganbench: {_jobs(unreported)} of the sweep gave no result (see above)"
    if statuses[REFUSED]:
        return 2, f"ganbench: {_jobs(statuses[REFUSED])} of the sweep refused to run (see above)"
    return 0, None


def _jobs(count: int) -> str:
    return f"{count} job{'' if count == 1 else 's'}"
