"""What one job of a sweep reports to the sweeper, shared by the job (``ganbench.train``) and the sweeper
(``ganbench.sweep``); light to import, since every run imports it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ganbench.run_dir import read_finished_record

SKIPPED, REFUSED, NO_RESULT, CRASHED = "skipped", "refused", "no_result", "crashed"
# How this launch's jobs ended, besides training: finished by an earlier launch; refused before training and leaving
# no record (the run directory in use or unreadable); ended without reporting (killed, out of memory, node lost, after
# every resubmission); crashed outside the run (e.g. its directory could not be created).
LAUNCH_OUTCOMES = {SKIPPED: "finished earlier", REFUSED: "refused", NO_RESULT: "without a result", CRASHED: "crashed"}
UNREPORTED = (NO_RESULT, CRASHED)
ERRORS = ("failed", REFUSED, *UNREPORTED)  # outcomes whose line is an error, for stderr


@dataclass(frozen=True)
class JobOutcome:
    """What one job of a sweep tells the sweeper: the search objective (the protocol's worst score for a run that
    failed, diverged or never trained), how the launch ended (a record status or one of ``LAUNCH_OUTCOMES``) and the
    one line it printed, which a sweep of separate processes prints for it."""

    objective: float
    status: str
    line: str


def skipped_outcome(run_dir: Path, record: dict[str, Any]) -> JobOutcome:
    """A run an earlier launch finished: its recorded objective, and no training."""
    line = f"{run_dir}: finished earlier ({record['status']}), not trained again"
    return JobOutcome(float(record["objective"]), SKIPPED, line)


def finished_outcome(run_dir: Path, cfg: DictConfig) -> JobOutcome | None:
    """The outcome of a run that an earlier launch finished with this very config, found before launching it."""
    record = read_finished_record(run_dir, cfg)
    return None if record is None else skipped_outcome(run_dir, record)
