"""Run records (summary.json files) as one pandas DataFrame, a row per run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ganbench.record import read_records

IDENTITY_COLUMNS = ("run", "loss", "dataset", "model", "seed", "status", "g_steps", "wall_time_s")
STUDY_COLUMNS = ("study", "phase", "trial", "objective")


def load_runs(root: Path) -> pd.DataFrame:
    """One row per run under ``root``: identity, status, study/phase/trial and the search objective, ``hp_<key>`` for
    each recorded hyperparameter (``hp_optim.lr``...), ``final_<metric>`` and ``best_<metric>`` columns, the run's
    overrides, the path of the last sample image and the error of a failed run. Empty when ``root`` holds no record."""
    rows = []
    for run_dir, record in read_records(root):
        row = {
            "run": run_dir.relative_to(root).as_posix(),
            **{key: record[key] for key in IDENTITY_COLUMNS[1:]},
            "primary_metric": record["primary_metric"],
            "higher_is_better": record["higher_is_better"],
            **{key: record.get(key) for key in STUDY_COLUMNS},
            **{f"hp_{key}": value for key, value in record.get("hyperparameters", {}).items()},
            "overrides": record["overrides"],
        }
        for stage in ("final", "best"):
            row |= {f"{stage}_{k}": v for k, v in (record[stage] or {}).items() if k != "g_step"}
        row["best_g_step"] = (record["best"] or {}).get("g_step")
        row["sample_image"] = str(run_dir / record["sample_image"]) if record["sample_image"] else None
        row["error"] = record["error"]
        rows.append(row)
    return pd.DataFrame(rows)
