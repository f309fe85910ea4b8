"""Manual-optimization GAN training under DDP (2 CPU processes, gloo), each case in its own process with a timeout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here launches real runs in subprocesses

ROOT = Path(__file__).resolve().parent.parent


def _run_case(case: str, out_dir: Path) -> list[dict]:
    out_dir.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.ddp_case", case, str(out_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [torch.load(path, weights_only=False) for path in sorted(out_dir.glob("rank*.pt"))]


@pytest.mark.parametrize("case", ["pair_random", "pair_bn"])
def test_wgan_gp_parameters_identical_across_ranks(tmp_path: Path, case: str) -> None:
    """WGAN-GP (double backward) with and without BatchNorm in D: every parameter equal on both ranks."""
    rank0, rank1 = _run_case(case, tmp_path / case)
    params0, params1 = rank0["params"], rank1["params"]
    trained = [k for k in params0 if "running" not in k and "num_batches" not in k]
    assert trained
    for name in trained:
        assert torch.equal(params0[name], params1[name]), name
    assert not torch.equal(rank0["data"], rank1["data"]), "each rank must draw its own data"
    assert not torch.equal(rank0["z"], rank1["z"]), "each rank must draw its own noise"


def test_two_processes_equal_one_process_with_the_global_batch(tmp_path: Path) -> None:
    """Without BN and with the randomness fixed, DDP's gradient average over two halves equals the gradient of the
    whole batch: 2 processes × batch 4 must train exactly like 1 process × batch 8."""
    (single,) = _run_case("single", tmp_path / "single")
    rank0, _ = _run_case("pair", tmp_path / "pair")
    for name, value in single["params"].items():
        torch.testing.assert_close(rank0["params"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_ddp_trainer_config_trains_evaluates_and_records(tmp_path: Path) -> None:
    """conf/trainer/ddp.yaml on 2 CPU processes: training, evaluation (metrics synced) and the record all work, though
    the spawned workers' callbacks never return to the launching process."""
    result = run_cli(
        "ganbench-train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "+trainer.strategy.process_group_backend=gloo",
        "loss=wgan_gp",
        *FAST,
        f"hydra.run.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["g_steps"] == 20 and summary["d_steps"] == 100
    assert [entry["g_step"] for entry in summary["history"]] == [10, 20]
    assert summary["protocol"]["scorers"]["mixture"]["num_modes"] == 8
