"""Run records (summary.json files) as one pandas DataFrame, a row per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.record import read_records

IDENTITY_COLUMNS = ("run", "loss", "dataset", "model", "seed", "status", "g_steps", "wall_time_s")
STUDY_COLUMNS = ("study", "phase", "trial", "objective")


def record_row(run: str, record: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The table row of one run record (``RunRecord`` as a dict), wherever it was read from; ``run_dir`` locates the
    sample image on disk."""
    row = {
        "run": run,
        **{key: record[key] for key in IDENTITY_COLUMNS[1:]},
        "primary_metric": record["primary_metric"],
        "higher_is_better": record["higher_is_better"],
        **{key: record.get(key) for key in STUDY_COLUMNS},
        **{f"hp_{key}": value for key, value in record.get("hyperparameters", {}).items()},
        "overrides": record["overrides"],
        "tie_breakers": tuple((record.get("protocol") or {}).get("tie_breakers", ())),
    }
    for stage in ("final", "best"):
        row |= {f"{stage}_{k}": v for k, v in (record[stage] or {}).items() if k != "g_step"}
    row["best_g_step"] = (record["best"] or {}).get("g_step")
    image = record["sample_image"]
    row["sample_image"] = str(run_dir / image) if image and run_dir is not None else None
    row["error"] = record["error"]
    row["warnings"] = "; ".join(record.get("warnings") or [])
    row["delta"] = _threshold(record.get("protocol"))
    return row


def _threshold(protocol: dict[str, Any] | None) -> float | None:
    """The distance threshold δ of a protocol whose scorer has one (triangles' precision and recall), else None."""
    scorers = (protocol or {}).get("scorers") or {}
    return next((scorer["delta"] for scorer in scorers.values() if "delta" in scorer), None)


def load_runs(root: Path) -> pd.DataFrame:
    """One row per run under ``root``: identity, status, study/phase/trial and the search objective, ``hp_<key>`` for
    each recorded hyperparameter (``hp_optim.lr``...), ``final_<metric>`` and ``best_<metric>`` columns, the run's
    overrides, the path of the last sample image and the error of a failed run. Empty when ``root`` holds no record."""
    rows = [record_row(run_dir.relative_to(root).as_posix(), record, run_dir) for run_dir, record in read_records(root)]
    return pd.DataFrame(rows)
