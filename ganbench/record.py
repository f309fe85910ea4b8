"""The run record: a self-describing ``summary.json`` in each run directory, read back by the analysis."""

from __future__ import annotations

import json
import math
import platform
import sys
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


def read_records(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """All (run directory, record) pairs under ``root``, in sweep job order."""
    paths = sorted(root.rglob(SUMMARY_FILE), key=_natural_key)
    return [(path.parent, json.loads(path.read_text())) for path in paths]
