"""End-to-end runs through the real config, trainer, evaluation and run record."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ganbench.errors import UserError
from ganbench.run import train
from tests.helpers.cli import FAST
from tests.helpers.configs import LOSSES
from tests.helpers.image_files import write_mnist_like

RECORD_KEYS = {"status", "loss", "dataset", "seed", "g_steps", "d_steps", "wall_time_s", "final", "best", "history"}


def _read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("loss", LOSSES)
def test_short_run_of_every_loss_writes_a_complete_record(make_config, tmp_path: Path, loss: str) -> None:
    cfg = make_config(f"loss={loss}", *FAST)
    record = train(cfg, tmp_path)
    summary = _read_summary(tmp_path)
    assert summary.keys() >= RECORD_KEYS
    assert summary["status"] == record.status == "completed"
    d_steps_per_g_step = 0 if cfg.get("training_module") else cfg.training.n_critic  # the VAE takes no D step
    assert summary["g_steps"] == 20 and summary["d_steps"] == 20 * d_steps_per_g_step
    assert [entry["g_step"] for entry in summary["history"]] == [10, 20]
    assert summary["final"] == summary["history"][-1]
    unset = {"reverse_kl", *(["d_auc"] if summary["d_steps"] == 0 else [])}  # no D accuracy without a D
    assert all(math.isfinite(v) for k, v in summary["final"].items() if k not in unset)
    assert summary["versions"]["torch"] and summary["wall_time_s"] > 0
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / summary["sample_image"]).exists()


@pytest.mark.slow
@pytest.mark.parametrize(("loss", "model"), [*((loss, "infogan_cpu") for loss in LOSSES), ("ns", "mlp_image")])
def test_every_loss_trains_on_28_px_images(make_config, tmp_path: Path, loss: str, model: str) -> None:
    """The InfoGAN networks (and the original GAN's MLPs) on MNIST's real IDX format (12 training images, real
    loader): no NaN, a complete record."""
    write_mnist_like(tmp_path / "data", "MNIST", train_images=12)  # 5 D steps of 2 per G step for WGAN
    image_run = ["dataset=mnist", f"model={model}", "eval=moments", f"data_root={tmp_path / 'data'}"]
    tiny = ["logger=none", "training.g_steps=4", "eval.every_n_g_steps=2", "eval.num_samples=8"]
    cfg = make_config(f"loss={loss}", *image_run, *tiny, "dataset.batch_size=2", "eval.num_diagnostic_real=4")
    (tmp_path / "run").mkdir()
    record = train(cfg, tmp_path / "run")
    assert record.status == "completed" and record.g_steps == 4
    assert all(math.isfinite(v) for k, v in record.final.items() if k != "d_auc")


def test_a_training_split_smaller_than_one_step_is_refused(make_config, tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "data", "MNIST")  # 6 training images; WGAN's 5 D steps of 2 take 10
    image_run = ["dataset=mnist", "model=infogan_cpu", "eval=moments", f"data_root={tmp_path / 'data'}"]
    cfg = make_config("loss=wgan", *image_run, "logger=none", "dataset.batch_size=2")
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError, match=r"has 6 images, fewer than one G step takes \(dataset.batch_size=2 × 5 D"):
        train(cfg, tmp_path / "run")


def test_diverged_run_is_recorded_not_raised(make_config, tmp_path: Path) -> None:
    record = train(make_config("loss=lsgan", "optim.lr=1e6", *FAST), tmp_path)
    assert record.status == "diverged" and record.g_steps < 20
    assert _read_summary(tmp_path)["status"] == "diverged"


def test_failed_run_is_recorded_then_raised(make_config, tmp_path: Path) -> None:
    cfg = make_config("model.generator.data_dim=3", *FAST)  # D expects 2-D points: fails inside training
    with pytest.raises(RuntimeError):
        train(cfg, tmp_path)
    summary = _read_summary(tmp_path)
    assert summary["status"] == "failed" and "RuntimeError" in summary["error"]
    assert "Traceback" in (tmp_path / "error.log").read_text()


@pytest.mark.slow
def test_default_ns_run_on_ring_covers_most_modes(make_config, tmp_path: Path) -> None:
    """The README's default job: NS on ring, the default budget, seed 0. Which evaluation is best, and the final one,
    depend on the CPU's rounding (final modes 3-8 measured); the best evaluation reached 8 modes with a high-quality
    share of 0.75-0.94 in all 12 runs of seeds 0-2 × 1 and 2 threads × default and AVX2 matrix kernels. An untrained
    G covers no mode."""
    record = train(make_config("logger=none"), tmp_path)
    assert record.status == "completed" and record.g_steps == 5000
    assert record.best["modes"] >= 6 and record.best["high_quality"] >= 0.5


@pytest.mark.parametrize(
    ("logger", "pattern"), [("csv", "csv/version_0/metrics.csv"), ("tensorboard", "tensorboard/*/events.*")]
)
def test_file_loggers_write_their_logs(make_config, tmp_path: Path, logger: str, pattern: str) -> None:
    train(make_config(f"logger={logger}", *FAST[1:]), tmp_path)
    (log_file,) = tmp_path.glob(pattern)
    if logger == "csv":
        header = log_file.read_text().splitlines()[0].split(",")
        expected = {"train/d_loss", "train/g_loss", "train/penalty", "train/d_real", "train/d_fake"}
        assert expected | {"train/d_grad_norm", "train/g_grad_norm", "val/modes", "val/high_quality"} <= set(header)


def test_launching_again_resumes_and_adds_up_wall_time(make_config, tmp_path: Path) -> None:
    first = train(make_config(*FAST), tmp_path)
    second = train(make_config(*FAST, "training.g_steps=30"), tmp_path)
    assert (first.g_steps, second.g_steps) == (20, 30)
    assert [entry["g_step"] for entry in second.history] == [10, 20, 30], "the history survives the resume"
    assert second.wall_time_s > first.wall_time_s
    again = train(make_config(*FAST, "training.g_steps=30"), tmp_path)
    assert again.g_steps == 30 and again.history == second.history, "a finished run takes no further step"


def test_a_different_run_never_resumes_another_runs_checkpoint(make_config, tmp_path: Path) -> None:
    train(make_config(*FAST), tmp_path)
    before = (tmp_path / "summary.json").read_text()
    with pytest.raises(UserError, match=r"different run \(differs in loss.name"):
        train(make_config("loss=lsgan", *FAST), tmp_path)
    assert (tmp_path / "summary.json").read_text() == before, "the existing run's record is untouched"


def test_cpu_threads_sets_torch_threads_for_the_run(make_config, tmp_path: Path) -> None:
    """launcher=parallel sets cpu_threads=1 so that parallel runs do not oversubscribe the cores."""
    before = torch.get_num_threads()
    try:
        train(make_config(*FAST, "cpu_threads=1"), tmp_path)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
