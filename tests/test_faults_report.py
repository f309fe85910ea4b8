"""The report survives bad records: a garbage, empty or truncated summary.json is listed with why, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from ganbench.analysis.comparison import ERROR_WIDTH, comparison_table
from ganbench.analysis.runs import load_runs
from ganbench.record import SUMMARY_FILE, RunRecord, write_record
from ganbench.report import write_report

EVALUATION = {"g_step": 20.0, "modes": 6.0, "high_quality": 0.5, "reverse_kl": 0.3}
CRASH = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (16x3 and 2x128), the generator emits 3-D points\n..."


def _record(status: str, lr: float, error: str | None = None, **hyperparameters: float) -> RunRecord:
    """A mixture run's record as ganbench-train writes it; a failed one never evaluated."""
    evaluated = status != "failed"
    return RunRecord(
        status=status,  # type: ignore[arg-type]
        loss="ns",
        dataset="ring",
        model="mlp",
        seed=0,
        phase="run",
        hyperparameters={"optim.lr": lr, "d_batch_norm": False, **hyperparameters},
        primary_metric="modes" if evaluated else None,
        g_steps=20 if evaluated else 0,
        g_step_budget=20,
        final=EVALUATION if evaluated else None,
        best=EVALUATION if evaluated else None,
        history=[EVALUATION] if evaluated else [],
        overrides=[f"optim.lr={lr}"],
        error=error,
    )


GOOD = {
    "0": _record("completed", 1e-4),
    "1": _record("completed", 2e-4, **{"loss.penalty.weight": 10.0}),
    "2": _record("interrupted", 2e-4, "interrupted by SIGTERM after 20 of 40 G steps; launch it again to resume"),
    "3": _record("failed", 3e-4, CRASH),
}
WRITTEN = json.dumps(asdict(GOOD["0"]), indent=2)
TRUNCATED = WRITTEN[: WRITTEN.index('"final"')]  # cut short after a key's comma, as a copy that stopped midway
# Each bad file's content and the reason the report gives for it.
BAD = {
    "garbage": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00", "not JSON (not UTF-8 text)"),
    "empty_object": (b"{}", "not a run record: an empty object"),
    "truncated": (TRUNCATED.encode(), "truncated JSON (ends at line "),
    "empty": (b"", "empty file"),
}


def _write_bad(root: Path, bad: dict[str, tuple[bytes, str]]) -> None:
    for name, (content, _) in bad.items():
        (root / name).mkdir(parents=True)
        (root / name / SUMMARY_FILE).write_bytes(content)


def _report(root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """ganbench-report as a user runs it, in a fresh interpreter."""
    command = [sys.executable, "-m", "ganbench.report", str(root)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def mixed_dir(tmp_path: Path) -> Path:
    """A sweep folder with four good records (one failed, one interrupted) and four bad summary.json files."""
    root = tmp_path / "sweep"
    for name, record in GOOD.items():
        write_record(record, root / name)
    _write_bad(root, BAD)
    return root


@pytest.mark.slow
def test_report_lists_the_unreadable_records_and_reports_the_rest(mixed_dir: Path, tmp_path: Path) -> None:
    result = _report(mixed_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "ring" in line]
    assert [line.split("|")[1].strip() for line in rows] == ["0", "1", "2", "3"], "every good run, in job order"
    assert "interrupted" in result.stdout and "interrupted by SIGTERM" in result.stdout
    heading, *listed = result.stderr.strip().splitlines()
    assert heading == "ganbench-report: 4 summary.json files could not be read as run records, left out of the report:"
    expected = {str(mixed_dir / name / SUMMARY_FILE): reason for name, (_, reason) in BAD.items()}
    assert len(listed) == len(expected)
    for line in listed:
        path, reason = line.strip().split(": ", 1)
        assert reason.startswith(expected[path]), line
    markdown = (mixed_dir / "report" / "comparison.md").read_text()
    section = markdown.split("\n## Unreadable records\n", 1)[1]
    for path, reason in expected.items():
        assert f"- `{path}`: {reason}" in section
    assert markdown.count("\n|") == 2 + len(GOOD), "header, rule and the good runs only"


@pytest.mark.slow
def test_report_with_no_readable_record_is_one_clear_error(tmp_path: Path) -> None:
    _write_bad(tmp_path / "sweep", BAD)
    result = _report(tmp_path / "sweep", tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ganbench-report: no run record could be read under {tmp_path / 'sweep'} (4 summary.json")
    assert all(reason in line for _, reason in BAD.values())
    assert not (tmp_path / "sweep" / "report").exists()


def _without(record: RunRecord, *keys: str) -> bytes:
    return json.dumps({k: v for k, v in asdict(record).items() if k not in keys}).encode()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello", "not JSON (expecting value at line 1 column 1)"),
        (b'{"status": "completed",\n "loss": ', "truncated JSON (ends at line 2 column 10)"),
        (b'{"status": "completed"\n "loss": 1}', "not JSON (expecting ',' delimiter at line 2 column 2)"),
        (b"[1, 2]", "not a run record: an array, not an object"),
        (b"null", "not a run record: null, not an object"),
        (b"  \n", "empty file"),
        (_without(GOOD["0"], "status", "loss"), "not a run record: missing keys status, loss"),
        (json.dumps(asdict(GOOD["0"]) | {"final": [6.0]}).encode(), "not a run record: final is not an object"),
    ],
)
def test_load_runs_says_why_a_record_is_unreadable(tmp_path: Path, content: bytes, reason: str) -> None:
    write_record(GOOD["0"], tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / SUMMARY_FILE).write_bytes(content)
    loaded = load_runs(tmp_path)
    assert list(loaded.runs["run"]) == ["good"]
    assert [(item.path, item.reason) for item in loaded.unreadable] == [(tmp_path / "bad" / SUMMARY_FILE, reason)]


def test_table_shows_the_hyperparameters_that_vary_and_the_errors(tmp_path: Path) -> None:
    for name, record in GOOD.items():
        write_record(record, tmp_path / name)
    table = comparison_table(load_runs(tmp_path).runs)
    hyperparameters = [c for c in table.columns if c.startswith("hp_")]
    assert hyperparameters == ["hp_optim.lr", "hp_loss.penalty.weight"], "d_batch_norm is the same in every run"
    assert list(table["hp_optim.lr"]) == [1e-4, 2e-4, 2e-4, 3e-4]
    assert table.columns[-1] == "error"
    assert table["error"][:2].isna().all(), "the completed runs have none"
    errors = list(table["error"])
    assert errors[2].startswith("interrupted by SIGTERM after 20 of 40 G steps")
    assert errors[3].startswith("RuntimeError: mat1 and mat2") and errors[3].endswith("…")
    assert all(len(error) <= ERROR_WIDTH for error in errors[2:]), "one short line each"


def test_table_of_runs_without_errors_or_differences_has_neither_column(tmp_path: Path) -> None:
    for name in ("0", "1"):
        write_record(_record("completed", 1e-4), tmp_path / name)
    table = comparison_table(load_runs(tmp_path).runs)
    assert "error" not in table and not [c for c in table.columns if c.startswith("hp_")]


def test_study_report_ends_with_the_unreadable_records(tmp_path: Path) -> None:
    for trial, lr in enumerate((1e-4, 2e-4)):
        record = _record("completed", lr)
        record.study, record.phase, record.trial, record.objective = "ring", "wide", trial, 6.0
        write_record(record, tmp_path / "runs" / "wide" / "ns" / str(trial))
    _write_bad(tmp_path / "runs" / "wide" / "ns", {"2": BAD["garbage"]})
    report = write_report(load_runs(tmp_path / "runs"), tmp_path / "out", "study")
    assert [section.dataset for section in report.sections] == ["ring"]
    listed = f"- `{tmp_path / 'runs' / 'wide' / 'ns' / '2' / SUMMARY_FILE}`: not JSON (not UTF-8 text)\n"
    study = (tmp_path / "out" / "study.md").read_text()
    assert study.split("\n## Unreadable records\n", 1)[1].endswith(listed)
