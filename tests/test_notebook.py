"""notebooks/compare_losses.ipynb runs from top to bottom on a small real study and shows its tables and figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers.cli import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here launches real runs in subprocesses

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "compare_losses.ipynb"


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real study: a wide search of two losses × three trials, then three seeds of one setting."""
    cwd = tmp_path_factory.mktemp("notebook")
    search = ["-m", "search=lucic_wide", "search.trials_per_loss=3", "search.losses=[ns,wgan]", *FAST]
    seeds = ["-m", "search=seeds", "loss=ns", "seed=range(1,4)", *FAST]
    for args in (search, seeds):
        result = run_cli("ganbench-train", *args, cwd=cwd)
        assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / "studies" / "ring"


def test_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.outputs and cell.execution_count is None for cell in notebook.cells if cell.cell_type == "code")


def test_notebook_executes_on_a_study(tiny_study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBENCH_STUDY", str(tiny_study))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", "")) for output in outputs
    )
    assert "9 runs under" in text
    assert "best_search" in text and "seeds_mean" in text  # Table 2
    assert "search=seeds" in text and "seed=range(1,4)" in text  # the seeds-phase commands
    figures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(figures) == 3  # score distribution, budget curves, learning-rate sensitivity
