"""The run record: a self-describing ``summary.json`` in each run directory, read back by the analysis."""

from __future__ import annotations

import json
import math
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from ganbench.atomic import atomic_path

SUMMARY_FILE = "summary.json"
Status = Literal["completed", "diverged", "timed_out", "interrupted", "failed"]
_VERSIONED_PACKAGES = ("ganbench", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core", "wandb")


def library_versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide a run's numbers."""
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass
class RunRecord:
    """Everything analysis needs to know about one run, without importing the training code."""

    status: Status
    loss: str
    dataset: str
    model: str
    seed: int
    study: str | None = None
    phase: str | None = None
    trial: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    primary_metric: str | None = None
    higher_is_better: bool = True
    g_steps: int = 0
    d_steps: int = 0
    g_step_budget: int = 0
    wall_time_s: float = 0.0
    final: dict[str, float] | None = None
    best: dict[str, float] | None = None
    objective: float | None = None
    warnings: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    protocol: dict[str, Any] | None = None
    sample_image: str | None = None
    overrides: list[str] = field(default_factory=list)
    error: str | None = None
    versions: dict[str, str] = field(default_factory=library_versions)
    command: list[str] = field(default_factory=lambda: list(sys.argv))


def record_from_config(cfg: DictConfig, status: Status, overrides: list[str]) -> RunRecord:
    """A run's record as its composed config describes it, before any result (used by training and by the W&B
    reader, which has the config but no summary.json)."""
    return RunRecord(
        status=status,
        loss=cfg.loss.name,
        dataset=cfg.dataset.name,
        model=cfg.model.name,
        seed=cfg.seed,
        study=cfg.study.name,
        phase=cfg.study.phase,
        trial=cfg.study.trial,
        hyperparameters=recorded_hyperparameters(cfg),
        g_step_budget=cfg.training.g_steps,
        overrides=overrides,
    )


RECORDED_HYPERPARAMETERS = (
    "optim.lr",
    "optim.beta1",
    "training.n_critic",
    "d_batch_norm",
    "loss.constraint.clip",
    "loss.penalty.weight",
)


def recorded_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The values a search varies, as this run used them (absent ones, e.g. a clip without clipping, left out): the
    usual ones and, in a search, the keys of its space."""
    search = cfg.get("search") or {}
    spaces = [search.get("space") or {}, *(search.get("per_loss") or {}).values()]
    keys = [*RECORDED_HYPERPARAMETERS, *(key for space in spaces for key in space)]
    values = {key: OmegaConf.select(cfg, key, default=None) for key in dict.fromkeys(keys)}
    return {key: value for key, value in values.items() if value is not None}


def best_evaluation(history: list[dict[str, float]], protocol: dict[str, Any]) -> dict[str, float] | None:
    """The best evaluation of ``history`` under the protocol's ranking: its primary metric, then its tie-breakers,
    then the earliest; NaN ranks last."""
    sign = 1.0 if protocol["higher_is_better"] else -1.0

    def key(entry: dict[str, float]) -> tuple[float, ...]:
        values = (entry.get(name) for name in (protocol["primary"], *protocol["tie_breakers"]))
        return tuple(-math.inf if v is None or math.isnan(v) else sign * v for v in values)

    return max(history, key=key) if history else None


def apply_progress(record: RunRecord, progress: dict[str, Any]) -> None:
    """What training reached (``progress.json``, kept current by the evaluation) into the record: steps, history,
    final and best metrics, protocol and the last sample image; also for a run that failed or was stopped."""
    record.g_steps, record.d_steps = progress["g_steps"], progress["d_steps"]
    record.history, record.sample_image = progress["history"], progress["sample_image"]
    record.protocol = progress["protocol"]
    record.primary_metric = record.protocol["primary"]
    record.higher_is_better = record.protocol["higher_is_better"]
    record.final = record.history[-1] if record.history else None
    record.best = best_evaluation(record.history, record.protocol)


def search_objective(record: RunRecord, worst_score: float) -> float:
    """The run's score for a search: its best primary metric, or the protocol's worst score when the run diverged,
    failed or produced no finite score (Lucic et al. scored NaN runs FID 31337)."""
    if record.status != "completed" or record.best is None or record.primary_metric is None:
        return float(worst_score)
    value = record.best.get(record.primary_metric)
    return float(value) if value is not None and math.isfinite(value) else float(worst_score)


def _json_safe(value: Any) -> Any:
    """NaN and ±inf become null: strict JSON that every reader (pandas, jq, browsers) accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomic(data: Any, path: Path) -> None:
    """Strict JSON (NaN as null), written atomically."""
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_record(record: RunRecord, run_dir: Path) -> Path:
    path = run_dir / SUMMARY_FILE
    write_json_atomic(asdict(record), path)
    return path


def _natural_key(path: Path) -> list[tuple[int, int | str]]:
    """Orders sweep job directories 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.parts]


@dataclass(frozen=True)
class Unreadable:
    """A summary.json that is not a run record, and why in a short sentence: the report lists it instead of failing."""

    path: Path
    reason: str


@dataclass
class RecordsRead:
    """The (run directory, record) pairs under a directory, and the summary.json files that could not be read."""

    records: list[tuple[Path, dict[str, Any]]]
    unreadable: list[Unreadable]


# Why a JSON object is not a record a reader can use (missing keys, values of the wrong type), or None when it is.
RecordCheck = Callable[[dict[str, Any]], str | None]
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def _not_json(text: bytes, error: ValueError) -> str:
    """Why ``text`` did not parse, for a person: empty, not text, cut short (a copy or write that stopped midway), or
    where the JSON parser stopped."""
    if not text.strip():
        return "empty file"
    if not isinstance(error, json.JSONDecodeError):
        return "not JSON (not UTF-8 text)"
    if error.pos >= len(error.doc.rstrip()):
        return f"truncated JSON (ends at line {error.lineno} column {error.colno})"
    return f"not JSON ({error.msg.lower()} at line {error.lineno} column {error.colno})"


def _object_problem(data: Any) -> str | None:
    """Why parsed JSON cannot be a run record at all (None when it may be one): anything but a non-empty object."""
    if not isinstance(data, dict):
        return f"not a run record: {_JSON_KINDS.get(type(data), 'null')}, not an object"
    return "not a run record: an empty object" if not data else None


def _read_record(path: Path, problem: RecordCheck) -> dict[str, Any] | Unreadable:
    """The record in one summary.json, or why it cannot be read."""
    try:
        text = path.read_bytes()
    except OSError as error:
        return Unreadable(path, f"cannot be read ({(error.strerror or str(error)).lower()})")
    try:
        data = json.loads(text)
    except ValueError as error:
        return Unreadable(path, _not_json(text, error))
    reason = _object_problem(data) or problem(data)
    return data if reason is None else Unreadable(path, reason)


def read_records(root: Path, problem: RecordCheck) -> RecordsRead:
    """Every summary.json under ``root`` in sweep job order, each a record or, when it is not a JSON object or
    ``problem`` names what the reader lacks in it, unreadable: one bad file (garbage, truncated) hides no other."""
    read = RecordsRead([], [])
    for path in sorted(root.rglob(SUMMARY_FILE), key=_natural_key):
        record = _read_record(path, problem)
        if isinstance(record, Unreadable):
            read.unreadable.append(record)
        else:
            read.records.append((path.parent, record))
    return read
