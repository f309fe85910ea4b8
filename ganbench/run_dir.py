"""What earlier launches left in a run directory, read and checked before a new launch touches anything in it.

A run directory holds the resolved config (``config.yaml``), the record (``summary.json``), the progress of the
training in flight (``progress.json``) and the checkpoint (``checkpoints/last.ckpt``). Launching into it again skips a
finished run, resumes an unfinished one and refuses another run's checkpoint; a file that cannot be read stops the
launch with one line naming it and the fix, before any file is rewritten. One launch owns the directory at a time.
"""

from __future__ import annotations

import fcntl
import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from ganbench.errors import CorruptFileError, UserError
from ganbench.record import SUMMARY_FILE

RESOLVED_CONFIG = "config.yaml"
PROGRESS_FILE = "progress.json"  # written by rank 0 during training (see Evaluation); the record is built from it
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
LOCK_FILE = ".lock"
# Keys that do not change what a run computes: launching again with other values still resumes or skips the run
# (a study's budget grows with search.trials_per_loss; the launcher, logger and time limit may change between launches).
NOT_IDENTITY = ("parallel_jobs", "cpu_threads", "verbose", "search.", "logger.", "training.time_limit")
FINISHED = ("completed", "diverged")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}."""
    if not isinstance(node, dict):
        return {prefix: node}
    return {k: v for key, value in node.items() for k, v in flatten(value, f"{prefix}.{key}".lstrip(".")).items()}


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """The JSON object in ``path``; CorruptFileError (with ``fix``) for anything else: garbage, truncated, a list."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptFileError(path, f"not JSON ({error})", fix) from error
    if not isinstance(data, dict):
        raise CorruptFileError(path, f"a JSON {type(data).__name__}, not an object", fix)
    return data


@dataclass(frozen=True)
class EarlierLaunch:
    """The state earlier launches left: their record and resolved config (None when absent) and a checkpoint."""

    run_dir: Path
    record: dict[str, Any] | None
    config: dict[str, Any] | None
    has_checkpoint: bool

    @property
    def wall_time_s(self) -> float:
        """Wall time already spent here by earlier launches that a resumed run adds to (0 for a run started afresh)."""
        if not self.has_checkpoint or self.record is None:
            return 0.0
        return float(self.record.get("wall_time_s") or 0.0)

    def changed_keys(self, cfg: DictConfig) -> list[str]:
        """Config keys that decide the run's numbers whose value differs from the earlier launch's."""
        if self.config is None:
            return []
        now = flatten(OmegaConf.to_container(cfg, resolve=True))
        keys = (k for k in self.config.keys() | now.keys() if not k.startswith(NOT_IDENTITY))
        return sorted(k for k in keys if self.config.get(k) != now.get(k))

    def finished_record(self, cfg: DictConfig) -> dict[str, Any] | None:
        """The record of this very run when an earlier launch finished it (completed or diverged, same config), so
        that launching an interrupted sweep again skips it; None when the run is new, unfinished, failed or changed."""
        if self.record is None or self.config is None or self.record.get("status") not in FINISHED:
            return None
        return None if self.changed_keys(cfg) else self.record

    def check_same_run(self, cfg: DictConfig) -> None:
        """Resuming is only for the same run: a directory holding another run's checkpoint (other loss, data, seed...)
        is refused before anything in it is touched. Only the budget may grow."""
        if not self.has_checkpoint:
            return
        changed = [key for key in self.changed_keys(cfg) if key != "training.g_steps"]
        if changed:
            raise UserError(
                f"{self.run_dir} holds a checkpoint of a different run (differs in {', '.join(changed)}); resuming it "
                f"would mix two runs. Use a new directory (a new hydra.run.dir or hydra.sweep.dir) or delete "
                f"{self.run_dir / LAST_CHECKPOINT} to start that run afresh"
            )


def _check_checkpoint(path: Path) -> None:
    """torch.save writes a zip archive with a CRC per entry: a truncated or overwritten checkpoint fails this check
    without unpickling anything."""
    fix = f"Delete it to start this run afresh (no older checkpoint is kept); {path.parent.parent / SUMMARY_FILE} keeps"
    fix += " what the run reached until the new launch writes its record"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise CorruptFileError(path, f"not a complete checkpoint ({error})", fix) from error
    if damaged is not None:
        raise CorruptFileError(path, f"its entry {damaged} is damaged (CRC mismatch)", fix)


def _read_config(path: Path) -> dict[str, Any]:
    fix = "Delete it and launch again with the same overrides: the run then resumes without checking that its config"
    fix += " is unchanged"
    try:
        config = OmegaConf.to_container(OmegaConf.load(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CorruptFileError(path, f"not YAML ({type(error).__name__})", fix) from error
    if not isinstance(config, dict):
        raise CorruptFileError(path, "not a config (a YAML mapping)", fix)
    return flatten(config)


def read_earlier_launch(run_dir: Path) -> EarlierLaunch:
    """Read and check what is in ``run_dir``; CorruptFileError names the first file that cannot be read."""
    checkpoint = run_dir / LAST_CHECKPOINT
    if has_checkpoint := checkpoint.exists():
        _check_checkpoint(checkpoint)
    record_file, config_file = run_dir / SUMMARY_FILE, run_dir / RESOLVED_CONFIG
    resume = "the run resumes from its checkpoint" if has_checkpoint else "the run starts afresh"
    record = None
    if record_file.exists():
        record = read_json_object(record_file, f"Delete it and launch again: {resume}")
        if "status" not in record:
            raise CorruptFileError(record_file, "not a run record (no status)", f"Delete it and launch again: {resume}")
    config = _read_config(config_file) if config_file.exists() else None
    return EarlierLaunch(run_dir, record, config, has_checkpoint)


def read_finished_record(run_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The record of this very run when an earlier launch finished it, read from the record and the config alone (a
    sweep checks every run before it launches one, so the checkpoint is not opened); None when a file is missing or
    unreadable, for the launch itself to resume or refuse."""
    try:
        record = read_json_object(run_dir / SUMMARY_FILE, "")
        config = _read_config(run_dir / RESOLVED_CONFIG)
    except CorruptFileError:
        return None
    return EarlierLaunch(run_dir, record, config, has_checkpoint=False).finished_record(cfg)


def _is_launching_process() -> bool:
    """False in the extra ranks of a DDP run that were started with the same command (by srun or by Lightning's
    script launcher): they share the launching rank's directory and must not lock it against it."""
    rank = os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or os.environ.get("LOCAL_RANK") or "0"
    return rank == "0"


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this launch: a second launch into it while this one runs is refused (two trainings
    writing one record and one checkpoint would corrupt both). The lock dies with the process, also when killed."""
    if not _is_launching_process():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise UserError(
                f"{run_dir} is in use by a run that is still going (process {owner}); wait for it to end, or launch "
                "into another directory (hydra.run.dir=... or hydra.sweep.dir=...)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
