"""Run records (summary.json files) as one pandas DataFrame, a row per run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.record import Unreadable, read_records

IDENTITY_COLUMNS = ("run", "loss", "dataset", "model", "seed", "status", "g_steps", "wall_time_s")
STUDY_COLUMNS = ("study", "phase", "trial", "objective")
# The keys ``record_row`` reads from every record (the first record version had them all; study columns,
# hyperparameters, protocol and warnings came later and may be absent).
ROW_KEYS = (
    "status",
    "loss",
    "dataset",
    "model",
    "seed",
    "g_steps",
    "wall_time_s",
    "primary_metric",
    "higher_is_better",
    "overrides",
    "final",
    "best",
    "sample_image",
    "error",
)
# The values ``record_row`` takes apart, and the JSON type each must have unless null.
_SHAPES = {
    "final": dict,
    "best": dict,
    "hyperparameters": dict,
    "protocol": dict,
    "warnings": list,
    "overrides": list,
    "sample_image": str,
}
_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string"}


def record_row(run: str, record: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The table row of one run record (``RunRecord`` as a dict), wherever it was read from; ``run_dir`` locates the
    sample image on disk."""
    row = {
        "run": run,
        **{key: record[key] for key in IDENTITY_COLUMNS[1:]},
        "primary_metric": record["primary_metric"],
        "higher_is_better": record["higher_is_better"],
        **{key: record.get(key) for key in STUDY_COLUMNS},
        **{f"hp_{key}": value for key, value in (record.get("hyperparameters") or {}).items()},
        "overrides": record["overrides"] or [],
        "tie_breakers": tuple((record.get("protocol") or {}).get("tie_breakers", ())),
    }
    for stage in ("final", "best"):
        row |= {f"{stage}_{k}": v for k, v in (record[stage] or {}).items() if k != "g_step"}
    row["best_g_step"] = (record["best"] or {}).get("g_step")
    image = record["sample_image"]
    row["sample_image"] = str(run_dir / image) if image and run_dir is not None else None
    row["error"] = record["error"]
    row["warnings"] = "; ".join(map(str, record.get("warnings") or []))
    row["delta"] = _threshold(record.get("protocol"))
    return row


def _threshold(protocol: dict[str, Any] | None) -> float | None:
    """The distance threshold δ of a protocol whose scorer has one (triangles' precision and recall), else None."""
    scorers = (protocol or {}).get("scorers") or {}
    return next((scorer["delta"] for scorer in scorers.values() if "delta" in scorer), None)


def row_problem(record: dict[str, Any]) -> str | None:
    """Why ``record_row`` cannot make a row of a JSON object (None when it can): keys it needs are missing, or a value
    it takes apart has the wrong type."""
    missing = [key for key in ROW_KEYS if key not in record]
    if missing:
        return f"not a run record: missing keys {', '.join(missing)}"
    wrong = [key for key, kind in _SHAPES.items() if record.get(key) is not None and not isinstance(record[key], kind)]
    return f"not a run record: {wrong[0]} is not {_TYPE_NAMES[_SHAPES[wrong[0]]]}" if wrong else None


@dataclass
class LoadedRuns:
    """The runs under a directory, a row each, and the summary.json files that are not run records (with why), which
    a report lists rather than failing on."""

    runs: pd.DataFrame
    unreadable: list[Unreadable]


def load_runs(root: Path) -> LoadedRuns:
    """One row per readable run under ``root``: identity, status, study/phase/trial and the search objective,
    ``hp_<key>`` for each recorded hyperparameter (``hp_optim.lr``...), ``final_<metric>`` and ``best_<metric>``
    columns, the run's overrides, the path of the last sample image and the error of a failed run. The table is empty
    when ``root`` holds no readable record."""
    read = read_records(root, row_problem)
    rows = [record_row(run_dir.relative_to(root).as_posix(), record, run_dir) for run_dir, record in read.records]
    return LoadedRuns(pd.DataFrame(rows), read.unreadable)
