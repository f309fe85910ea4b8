"""Fault injection: a run directory whose checkpoint, record or config is damaged is refused with one line, and the
files in it are left as they were."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here launches real runs in subprocesses

GARBAGE = b"\x00\x13garbage\xff" * 10


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run directory: config.yaml, summary.json, progress.json and checkpoints/last.ckpt."""
    root = tmp_path_factory.mktemp("finished")
    result = run_cli("ganbench-train", *FAST, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "run"


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """The run's own files: Hydra rewrites .hydra/ and train.log at every launch, the lock holds the launching pid."""
    files = (
        p
        for p in run_dir.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.name not in ("train.log", ".lock")
    )
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in files}


def damage(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(GARBAGE)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_text(how)


@pytest.mark.parametrize(
    ("file", "how", "problem", "fix"),
    [
        ("checkpoints/last.ckpt", "truncated", "not a complete checkpoint", "Delete it to start this run afresh"),
        ("checkpoints/last.ckpt", "garbage", "not a complete checkpoint", "Delete it to start this run afresh"),
        ("summary.json", "garbage", "not JSON", "the run resumes from its checkpoint"),
        ("summary.json", "[1, 2]", "a JSON list, not an object", "Delete it and launch again"),
        ("summary.json", "{}", "not a run record (no status)", "Delete it and launch again"),
        ("config.yaml", "a: [unclosed", "not YAML", "launch again with the same overrides"),
    ],
)
def test_a_damaged_file_of_a_run_directory_is_named_and_nothing_is_rewritten(
    finished_run: Path, tmp_path: Path, file: str, how: str, problem: str, fix: str
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    damage(run_dir / file, how)
    before = snapshot(run_dir)
    # A bigger budget: the run is not finished, so this launch would resume it.
    overrides = [*FAST, "training.g_steps=40", f"hydra.run.dir={run_dir}"]
    result = run_cli("ganbench-train", *overrides, cwd=tmp_path)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"ganbench: {run_dir / file} cannot be read: {problem}") and fix in message
    assert "Traceback" not in result.stderr
    after = snapshot(run_dir)
    assert {name: after[name] for name in before} == before, "no file of the run was rewritten"
