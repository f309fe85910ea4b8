"""A real multirun through the console script: failing jobs are recorded and the sweep goes on; the report reads it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers.cli import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here launches real runs in subprocesses


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 jobs: ok; invalid n_critic; G emitting 3-D points to a 2-D D (crashes in training); both faults."""
    root = tmp_path_factory.mktemp("sweep")
    result = run_cli(
        "ganbench-train",
        "-m",
        "model.generator.data_dim=2,3",
        "training.n_critic=1,0",
        *FAST,
        f"hydra.sweep.dir={root / 'multirun'}",
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    assert "ganbench: run failed: RuntimeError" in result.stderr
    assert "ganbench: invalid config: training.n_critic=0" in result.stderr
    return root / "multirun"


def test_every_job_of_the_sweep_is_recorded(sweep_dir: Path) -> None:
    statuses = [json.loads((sweep_dir / str(i) / "summary.json").read_text())["status"] for i in range(4)]
    assert statuses == ["completed", "failed", "failed", "failed"]
    crashed = json.loads((sweep_dir / "2" / "summary.json").read_text())
    assert "RuntimeError" in crashed["error"] and (sweep_dir / "2" / "error.log").exists()
    assert crashed["overrides"] == ["model.generator.data_dim=3", "training.n_critic=1", *FAST]


def test_report_writes_table_csv_and_figure(sweep_dir: Path, tmp_path: Path) -> None:
    result = run_cli("ganbench-report", str(sweep_dir), "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert " run " in result.stdout.splitlines()[0] and "completed" in result.stdout
    with open(tmp_path / "report" / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["run"] for row in rows] == ["0", "1", "2", "3"]
    assert [row["status"] for row in rows] == ["completed", "failed", "failed", "failed"]
    assert float(rows[0]["final_modes"]) >= 0 and rows[0]["best_g_step"] in ("10.0", "20.0")
    markdown = (tmp_path / "report" / "comparison.md").read_text()
    assert markdown.count("\n|") == 6  # header, rule, 4 runs
    assert "nan" not in markdown and "—" in markdown, "metrics a failed run lacks are shown as a dash"
    assert (tmp_path / "report" / "samples.png").stat().st_size > 0


@pytest.mark.parametrize("target", ["missing", "empty"])
def test_report_without_records_is_one_clear_error(tmp_path: Path, target: str) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("ganbench-report", str(tmp_path / target), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("ganbench-report: ") and "Traceback" not in result.stderr
