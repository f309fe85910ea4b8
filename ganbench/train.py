"""The Hydra entry point, ``ganbench-train``: compose → validate → run → report.

It takes Hydra overrides, e.g. ``loss=wgan_gp dataset=grid`` or ``-m loss=mm,ns,lsgan,wgan,wgan_gp`` for a sweep. Bad
input (a config value out of range, a missing dataset or weights file: a ``UserError``) stops a single run with one
line and exit code 2, a crash with exit code 1 and the traceback in the run's error.log; inside a multirun such a job
is recorded as failed and the sweep goes on. A stop signal ends the whole launch with 128 + its number.
"""

from __future__ import annotations

import os
import signal
import sys
from importlib import resources
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ganbench.console import quiet_libraries, result_line
from ganbench.errors import SweepExit, find_user_error
from ganbench.interruption import StopOnSignal, exit_code
from ganbench.job_outcome import REFUSED, JobOutcome, skipped_outcome
from ganbench.record import SUMMARY_FILE, record_from_config, write_record
from ganbench.resolvers import register as register_resolvers
from ganbench.run import ERROR_FILE, finish_record, run_exit_code, train
from ganbench.run_dir import read_earlier_launch, run_dir_lock
from ganbench.validate import ConfigError, validate, validate_launch

register_resolvers()

# conf/ of the repository, shipped inside the package as ganbench.conf (ganbench/conf links to it; pyproject.toml): the
# same files in an editable install, a wheel or a pip install from git.
CONFIG_DIR = str(resources.files("ganbench.conf"))


def _report_failure(message: str, exit_code: int, in_multirun: bool) -> None:
    """One message on stderr; a single run exits with ``exit_code``, a multirun goes on to its next job."""
    print(message, file=sys.stderr)
    if not in_multirun:
        sys.exit(exit_code)


def _record_invalid_config(cfg: DictConfig, run_dir: Path, overrides: list[str], error: ConfigError) -> None:
    """A failed record for a run refused before it started, so a sweep's table shows why; never over the record of a
    run launched earlier in this directory."""
    if (run_dir / SUMMARY_FILE).exists():
        return
    record = finish_record(record_from_config(cfg, "failed", overrides), None, 0.0, cfg.eval.worst_score)
    record.error = str(error)
    write_record(record, run_dir)


def _launch(cfg: DictConfig, run_dir: Path, overrides: list[str], in_multirun: bool, stop: StopOnSignal) -> JobOutcome:
    """Validate, take the run directory, skip a finished run or train; bad input and crashes end as one line."""
    worst_score = float(cfg.eval.worst_score)
    try:
        validate(cfg)
        validate_launch(cfg, in_multirun)
    except ConfigError as error:
        _record_invalid_config(cfg, run_dir, overrides, error)
        line = f"ganbench: invalid config: {error}"
        _report_failure(line, 2, in_multirun)
        return JobOutcome(worst_score, "failed", line)
    training = False
    try:
        with run_dir_lock(run_dir):
            earlier = read_earlier_launch(run_dir)
            if (finished := earlier.finished_record(cfg)) is not None:
                outcome = skipped_outcome(run_dir, finished)
                print(outcome.line)
                return outcome
            earlier.check_same_run(cfg)
            training = True
            record = train(cfg, run_dir, overrides, earlier, stop)
    except Exception as error:
        if (user_error := find_user_error(error)) is not None:
            line, code = f"ganbench: {user_error}", 2
        else:
            line = f"ganbench: run failed: {type(error).__name__}: {error}"
            line += f"\n  full traceback: {run_dir / ERROR_FILE}; record: {run_dir / SUMMARY_FILE}"
            code = 1
        _report_failure(line, code, in_multirun)
        return JobOutcome(worst_score, "failed" if training else REFUSED, line)
    line = result_line(record)
    print(line)
    if record.status == "interrupted":  # the signal ends the whole launch, a multirun too: its process is stopping
        print(f"ganbench: {record.error}", file=sys.stderr)
        sys.exit(run_exit_code(record, stop))
    return JobOutcome(float(record.objective), record.status, line)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> JobOutcome:
    """Hydra task: returns the run's outcome for the sweeper, with its search objective (the protocol's worst score
    for a failed or diverged run, so a sweeper always gets a number); never lets one failed job take a multirun down,
    but a stop signal ends the whole launch with 128 + its number (the run resumes when launched again)."""
    hydra_cfg = HydraConfig.get()
    quiet_libraries(verbose=bool(cfg.verbose or hydra_cfg.verbose))
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_multirun = hydra_cfg.mode == RunMode.MULTIRUN
    stop = StopOnSignal()
    with stop:
        try:
            return _launch(cfg, run_dir, list(hydra_cfg.overrides.task), in_multirun, stop)
        except KeyboardInterrupt:  # a second Ctrl-C before training started
            print("ganbench: interrupted before training started", file=sys.stderr)
            sys.exit(exit_code(signal.SIGINT))


def cli() -> None:
    """``ganbench-train``: Hydra's own refusals of the command line (an unknown config group or key, an override it
    cannot parse) exit 2 like all bad input. They come before any job starts, when no job config exists yet.

    The launch runs its own W&B service: one inherited from a parent process that uses W&B (a notebook, a script;
    ``WANDB_SERVICE``) would outlive a killed run and keep its run id "in use", refusing the relaunch that resumes it.
    """
    os.environ.pop("WANDB_SERVICE", None)
    try:
        main()
    except SystemExit as stopped:
        if stopped.code == 1 and not HydraConfig.initialized() and not isinstance(stopped, SweepExit):
            sys.exit(2)
        raise


if __name__ == "__main__":
    cli()
