"""The study report from real run records on disk: Table 2, metrics, budget curves, figures, seeds commands, the CLI."""

from __future__ import annotations

import csv
import math
import shlex
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig, OmegaConf

from ganbench.analysis.runs import LoadedRuns, load_runs
from ganbench.analysis.study import TABLE_COLUMNS, expected_best_curve
from ganbench.analysis.study_report import budget_axis_limits, seeds_command, study_report
from ganbench.analysis.wandb_runs import load_runs_from_wandb, wandb_record
from ganbench.loggers import wandb_summary
from ganbench.record import RunRecord, search_objective, write_record
from ganbench.report import write_report
from tests.helpers.cli import run_cli

TRIANGLES = {"metric": "f1", "higher_is_better": True, "worst": 0.0}
MNIST = {"metric": "fid", "higher_is_better": False, "worst": 31337.0}
CURVE_DELTAS = (0.5, 1.0, 2.0)  # a triangle record's curve: precision@1 = precision
# Per dataset: (phase, loss, trial or seed, status, primary score); None: the run never evaluated.
TRIANGLE_RUNS = [
    *[("wide", "ns", t, "completed", s) for t, s in enumerate([0.2, 0.6, 0.4])],
    ("wide", "ns", 3, "diverged", 0.9),  # its evaluations before diverging scored best, its objective is the worst
    *[("wide", "wgan", t, "completed", s) for t, s in [(0, 0.5), (1, 0.3), (3, 0.1)]],
    ("wide", "wgan", 2, "failed", None),
    *[("wide", "lsgan", t, "completed", s) for t, s in enumerate([0.7, 0.1, 0.2])],
    *[("seeds", "ns", k, "completed", s) for k, s in [(1, 0.55), (2, 0.6), (3, 0.65)]],
    *[("seeds", "wgan", k, "completed", s) for k, s in [(1, 0.45), (2, 0.5)]],
]
MNIST_RUNS = [
    ("wide", "ns", 0, "completed", 30.0),
    ("wide", "wgan", 0, "completed", 25.0),
    ("wide", "wgan", 1, "failed", None),
]


def _overrides(dataset: str, loss: str, phase: str, index: int) -> list[str]:
    """Overrides as Hydra records them for a job of the wide search or of the seeds phase."""
    if phase == "seeds":
        return [
            f"loss={loss}",
            "study.trial=1",
            "optim.lr=0.0002",
            "search=seeds",
            f"seed={index}",
            f"dataset={dataset}",
        ]
    return [
        f"loss={loss}",
        f"study.trial={index}",
        f"optim.lr={0.0001 * (index + 1)}",
        "d_batch_norm=False",
        "search=lucic_wide",
        "search.trials_per_loss=4",
        "search.losses=[ns,wgan,lsgan]",
        "logger=none",
        f"dataset={dataset}",
        "training.g_steps=200",
    ]


def _metrics(metric: str, score: float) -> dict[str, float]:
    """An evaluation's metrics; the triangle scorer's also carry its P(δ) and R(δ) curves ("precision@0.5")."""
    if metric == "f1":
        precision, recall = score + 0.1, score - 0.05
        curves = {
            f"{name}@{d:g}": min(1.0, value * d)
            for name, value in [("precision", precision), ("recall", recall)]
            for d in CURVE_DELTAS
        }
        return {"g_step": 100.0, "f1": score, "precision": precision, "recall": recall, **curves}
    return {"g_step": 100.0, "fid": score, "is": 5.0, "ipr_precision": 1 / (1 + score), "ipr_recall": 0.5}


def _record(
    dataset: str, protocol: dict, phase: str, loss: str, index: int, status: str, score: float | None
) -> RunRecord:
    """A record as ganbench-train writes it; a run that failed before evaluating keeps the record's defaults."""
    record = RunRecord(
        status=status,
        loss=loss,
        dataset=dataset,
        model="infogan",
        seed=index if phase == "seeds" else 0,
        study=dataset,
        phase=phase,
        trial=1 if phase == "seeds" else index,
        hyperparameters={"optim.lr": 0.0002 if phase == "seeds" else 0.0001 * (index + 1), "d_batch_norm": False},
        overrides=_overrides(dataset, loss, phase, index),
    )
    if score is not None:
        record.primary_metric, record.higher_is_better = protocol["metric"], protocol["higher_is_better"]
        record.final = record.best = _metrics(protocol["metric"], score)
        if protocol["metric"] == "f1":
            record.protocol = {"scorers": {"triangles": {"delta": 1.0}}}  # the δ of precision and recall
    record.objective = search_objective(record, protocol["worst"])
    return record


def _write_study(root: Path, dataset: str, protocol: dict, runs: list) -> None:
    for phase, loss, index, status, score in runs:
        run_dir = root / phase / loss / (f"seed{index}" if phase == "seeds" else str(index))
        run_dir.mkdir(parents=True)
        write_record(_record(dataset, protocol, phase, loss, index, status, score), run_dir)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder holding two datasets: triangles (wide + seeds, F1) and mnist (wide only, FID)."""
    root = tmp_path_factory.mktemp("study")
    _write_study(root / "triangles", "triangles", TRIANGLES, TRIANGLE_RUNS)
    _write_study(root / "mnist", "mnist", MNIST, MNIST_RUNS)
    return root


@pytest.fixture(scope="module")
def report_dir(study_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    sections = study_report(study_dir, out, num_seeds=5)
    assert [section.dataset for section in sections] == ["mnist", "triangles"]
    return out


def _csv(path: Path) -> pd.DataFrame:
    with open(path) as f:
        assert next(csv.reader(f)), f"{path} has no header"
    return pd.read_csv(path)


def test_table2_csv(report_dir: Path) -> None:
    table = _csv(report_dir / "triangles_table2.csv").set_index("loss")
    assert list(table.index) == ["lsgan", "ns", "wgan"], "in the order load_runs reads them"
    assert list(table.columns) == TABLE_COLUMNS[1:]
    assert table.loc["ns", "best_search"] == 0.6, "the diverged run's 0.9 is not its objective"
    assert table.loc["ns", "seeds_mean"] == pytest.approx(0.6) and table.loc["ns", "seeds_std"] == pytest.approx(0.05)
    assert tuple(table.loc["ns", ["n_search", "n_seeds", "diverged_share", "failed_share"]]) == (4, 3, 0.25, 0.0)
    assert table.loc["wgan", "best_search"] == 0.5 and table.loc["wgan", "failed_share"] == 0.25
    assert table.loc["wgan", "seeds_mean"] == pytest.approx(0.475)
    assert table.loc["lsgan", "best_search"] == 0.7 and math.isnan(table.loc["lsgan", "seeds_mean"])
    mnist = _csv(report_dir / "mnist_table2.csv").set_index("loss")
    assert mnist.loc["wgan", "best_search"] == 25.0, "FID: lower is better, the failed run's 31337 loses"
    assert mnist.loc["wgan", "failed_share"] == 0.5 and mnist["n_seeds"].eq(0).all()


def test_metrics_csv_at_the_best_run_and_over_the_seeds(report_dir: Path) -> None:
    metrics = _csv(report_dir / "triangles_metrics.csv").set_index("loss")
    assert list(metrics.columns) == [
        "best_run",
        *("search_f1", "search_precision", "search_recall"),
        *("seeds_f1", "seeds_precision", "seeds_recall"),
    ]
    ns = metrics.loc["ns"]
    assert ns["best_run"] == "triangles/wide/ns/1"
    assert (ns["search_f1"], ns["search_precision"], ns["search_recall"]) == pytest.approx((0.6, 0.7, 0.55))
    assert (ns["seeds_f1"], ns["seeds_precision"], ns["seeds_recall"]) == pytest.approx((0.6, 0.7, 0.55))
    assert metrics.loc["lsgan", "best_run"] == "triangles/wide/lsgan/0" and math.isnan(metrics.loc["lsgan", "seeds_f1"])
    assert list(_csv(report_dir / "mnist_metrics.csv").columns) == [
        "loss",
        "best_run",
        *("search_fid", "search_is", "search_ipr_precision", "search_ipr_recall"),
        *("seeds_fid", "seeds_is", "seeds_ipr_precision", "seeds_ipr_recall"),
    ]


def test_budget_csv_bootstraps_the_search_objectives(report_dir: Path) -> None:
    curves = _csv(report_dir / "triangles_budget.csv")
    assert list(curves.columns) == ["loss", "budget", "mean", "lower", "upper"]
    assert list(curves["loss"].unique()) == ["lsgan", "ns", "wgan"]
    assert (
        curves.groupby("loss")["budget"].apply(list) == pd.Series([[1, 2, 3]] * 3, index=["lsgan", "ns", "wgan"])
    ).all()
    ns = curves[curves["loss"] == "ns"].drop(columns="loss").reset_index(drop=True)
    # The diverged run is in with the worst F1 (0), the order of the runs as load_runs reads them.
    expected = expected_best_curve(np.array([0.2, 0.6, 0.4, 0.0]), [1, 2, 3], higher_is_better=True)
    pd.testing.assert_frame_equal(ns, expected, check_dtype=False)


def test_budget_axis_keeps_to_completed_scores_only_when_worst_scores_stretch_it(study_dir: Path) -> None:
    runs = load_runs(study_dir).runs
    mnist, triangles = (runs[runs["dataset"] == name] for name in ("mnist", "triangles"))
    curves = {"wgan": expected_best_curve(np.array([25.0, 31337.0]), [1], higher_is_better=False)}
    assert budget_axis_limits(curves, mnist, "wide") == pytest.approx((24.75, 30.25)), "25..30 padded by 5%"
    curves = {"ns": expected_best_curve(np.array([0.2, 0.6, 0.4, 0.0]), [1, 2, 3], higher_is_better=True)}
    assert budget_axis_limits(curves, triangles, "wide") is None, "F1's worst score 0 is close: show everything"


def test_figures_load(report_dir: Path) -> None:
    names = ["triangles_scores.png", "triangles_budget.png", "triangles_pr_delta.png", "mnist_scores.png"]
    for name in [*names, "mnist_budget.png"]:
        image = mpimg.imread(report_dir / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, name
    assert not (report_dir / "mnist_pr_delta.png").exists(), "FID records carry no P(δ), R(δ) curves"


def test_table2_for_every_metric_takes_each_metrics_own_best(report_dir: Path) -> None:
    """FID's best is its lowest, precision's its highest, each over the loss's search runs on its own."""
    table = _csv(report_dir / "mnist_per_metric.csv").set_index("loss")
    assert list(table.columns) == ["fid", "is", "ipr_precision", "ipr_recall"]
    assert table.loc["wgan", "fid"] == 25.0 and table.loc["wgan", "ipr_precision"] == pytest.approx(1 / 26)
    triangles = _csv(report_dir / "triangles_per_metric.csv").set_index("loss")
    assert triangles.loc["ns", "f1"] == 0.9 and triangles.loc["lsgan", "recall"] == pytest.approx(0.65)  # 0.7 − 0.05
    assert "### Table 2 for every metric" in (report_dir / "study.md").read_text()
    assert "fid ↓" in (report_dir / "study.md").read_text()


def test_precision_against_recall_has_every_search_run(report_dir: Path) -> None:
    """Improved precision/recall on the image study, the exact ones on triangles; every completed search run a dot."""
    for dataset, metric, (precision, recall) in [
        ("mnist", "fid", ("ipr_precision", "ipr_recall")),
        ("triangles", "f1", ("precision", "recall")),
    ]:
        points = _csv(report_dir / f"{dataset}_precision_recall.csv")
        assert list(points.columns) == ["run", "loss", precision, recall]
        runs = MNIST_RUNS if dataset == "mnist" else TRIANGLE_RUNS
        scored = [run for run in runs if run[0] == "wide" and run[4] is not None]
        assert len(points) == len(scored)
        expected = {f"{dataset}/wide/{loss}/{i}": _metrics(metric, score)[precision] for _, loss, i, _, score in scored}
        assert dict(zip(points["run"], points[precision], strict=True)) == pytest.approx(expected)
        assert mpimg.imread(report_dir / f"{dataset}_precision_recall.png").shape[1] > 300


def test_pr_delta_csv_holds_the_curves_of_each_loss_best_search_run(report_dir: Path) -> None:
    curves = _csv(report_dir / "triangles_pr_delta.csv")
    assert list(curves.columns) == ["loss", "run", "delta", "precision", "recall"]
    assert curves.groupby("loss")["run"].unique().map(list).to_dict() == {
        "lsgan": ["triangles/wide/lsgan/0"],
        "ns": ["triangles/wide/ns/1"],
        "wgan": ["triangles/wide/wgan/0"],
    }, "the best search run of each loss, as the metrics table"
    ns = curves[curves["loss"] == "ns"]
    assert list(ns["delta"]) == list(CURVE_DELTAS)
    assert list(ns["precision"]) == pytest.approx([0.35, 0.7, 1.0]) and list(ns["recall"]) == pytest.approx(
        [0.275, 0.55, 1.0]
    )


def test_study_markdown_holds_tables_figures_and_commands(report_dir: Path) -> None:
    markdown = (report_dir / "study.md").read_text()
    assert markdown.index("## mnist") < markdown.index("## triangles")
    assert "| loss   |   best f1 (wide search) | seeds mean ± std" in markdown
    assert "| ns     |                     0.6 | 0.6 ± 0.05" in markdown
    assert "25%" in markdown and "best fid (wide search)" in markdown
    assert "| ns     | triangles/wide/ns/1    |             0.6 |                    0.7 |" in markdown
    for name in ["triangles_scores.png", "triangles_budget.png", "triangles_table2.csv", "triangles_metrics.csv"]:
        assert name in markdown
    assert "triangles_pr_delta.png" in markdown and "triangles_pr_delta.csv" in markdown
    assert "Dashed: the protocol's δ = 1, where precision, recall and F1 are reported." in markdown
    assert "mnist_pr_delta" not in markdown
    assert "nan" not in markdown.lower()
    commands = [line for line in markdown.splitlines() if line.startswith("ganbench-train -m ")]
    assert len(commands) == 5, "one per loss of each dataset"
    ns = shlex.split(next(c for c in commands if "loss=ns" in c and "dataset=triangles" in c))
    assert ns == [
        "ganbench-train",
        "-m",
        "loss=ns",
        "study.trial=1",
        "optim.lr=0.0002",
        "d_batch_norm=False",
        "logger=none",
        "dataset=triangles",
        "training.g_steps=200",
        "search=seeds",
        "seed=range(1,6)",
    ]


def test_seeds_command_drops_the_search_and_the_seed() -> None:
    command = seeds_command(["loss=wgan", "seed=3", "search=lucic_narrow", "search.space.x=1", "model.z=a b"], 50)
    assert command == "ganbench-train -m loss=wgan 'model.z=a b' search=seeds 'seed=range(1,51)'"


@pytest.mark.slow
def test_cli_prints_table2_and_commands(study_dir: Path, tmp_path: Path) -> None:
    result = run_cli("ganbench-report", str(study_dir), "--out", str(tmp_path / "out"), "--seeds", "7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert " run " in lines[0], "the comparison table comes first, as for a plain sweep"
    assert "triangles: Table 2 (best f1, higher is better; search phase wide)" in lines
    assert "mnist: Table 2 (best fid, lower is better; search phase wide)" in lines
    commands = [shlex.split(line) for line in lines if line.startswith("ganbench-train -m ")]
    assert len(commands) == 5 and all(c[-2:] == ["search=seeds", "seed=range(1,8)"] for c in commands)
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert {"comparison.md", "comparison.csv", "study.md", "triangles_table2.csv", "mnist_budget.png"} <= written
    assert "samples.png" not in written and "samples.png" not in lines[-1], "no run saved a sample image"


def test_plain_sweep_writes_no_study_report(tmp_path: Path) -> None:
    record = _record("ring", TRIANGLES, "run", "ns", 0, "completed", 0.5)
    record.phase = "run"
    write_record(record, tmp_path / "runs" / "0")
    report = write_report(load_runs(tmp_path / "runs"), tmp_path / "out", "plain")
    assert report.sections == [] and report.files == ["comparison.md", "comparison.csv"]
    assert not (tmp_path / "out" / "study.md").exists()


def test_seeds_only_study_has_no_search_results(tmp_path: Path) -> None:
    _write_study(tmp_path / "runs", "triangles", TRIANGLES, [r for r in TRIANGLE_RUNS if r[0] == "seeds"])
    (section,) = study_report(tmp_path / "runs", tmp_path / "out")
    assert section.search_phase is None and section.commands == {} and section.curves == {}
    assert list(section.table["seeds_mean"]) == pytest.approx([0.6, 0.475])
    assert set(section.files) == {"table2", "metrics"}
    assert "Seeds phase:" not in (tmp_path / "out" / "study.md").read_text()


class FakeApi:
    """Stands in for wandb.Api: the runs of one project, each with the config and summary a ganbench run logs."""

    def __init__(self, runs: list[SimpleNamespace]) -> None:
        self._runs = runs
        self.paths: list[str] = []

    def runs(self, path: str) -> list[SimpleNamespace]:
        self.paths.append(path)
        return self._runs


def _wandb_run(config: DictConfig, name: str, summary: dict) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, id=f"id-{name}", config=OmegaConf.to_container(config, resolve=True), summary=summary
    )


def test_wandb_runs_map_to_the_columns_of_load_runs(make_config: Callable[..., DictConfig], tmp_path: Path) -> None:
    setting = ["loss=wgan", "search=lucic_wide", "study.trial=3", "optim.lr=0.0002", "loss.constraint.clip=0.05"]
    config = make_config(*setting, "d_batch_norm=false")
    overrides = [*setting, "d_batch_norm=false"]
    metrics = {"g_step": 100.0, "modes": 8.0, "high_quality": 0.9, "reverse_kl": 0.1}
    summary = {"status": "completed", "g_steps": 200, "wall_time_s": 3.5, "val/modes": 7.0, "_runtime": 4.0}
    summary |= {"overrides": overrides, "objective": 8.0}
    summary |= {f"best/{k}": v for k, v in metrics.items()} | {f"final/{k}": v for k, v in metrics.items()}
    diverged = {**summary, "status": "diverged"}
    api = FakeApi(
        [_wandb_run(config, "best", summary), _wandb_run(config, "div", diverged), _wandb_run(config, "live", {})]
    )
    runs = load_runs_from_wandb("me/ganbench", api=api)
    assert api.paths == ["me/ganbench"]
    assert list(runs["run"]) == ["best", "div"], "a run without a status yet is left out"
    best = runs.iloc[0]
    assert (best["loss"], best["dataset"], best["phase"], best["trial"], best["status"]) == (
        "wgan",
        "ring",
        "wide",
        3,
        "completed",
    )
    assert best["objective"] == 8.0 and runs.iloc[1]["objective"] == 0.0, "a diverged run scores the worst modes"
    assert best["hp_optim.lr"] == 0.0002 and best["hp_loss.constraint.clip"] == 0.05 and not best["hp_d_batch_norm"]
    assert best["best_g_step"] == 100.0 and best["final_modes"] == 8.0 and "final_val/modes" not in runs
    assert best["overrides"] == overrides
    # The same record written to disk reads back to the same row.
    write_record(wandb_record(api.runs("me/ganbench")[0].config, summary), tmp_path / "runs" / "best")
    from_disk = load_runs(tmp_path / "runs").runs.iloc[0]
    assert list(from_disk.index) == list(best.index)
    assert from_disk.drop(["run", "sample_image"]).to_dict() == best.drop(["run", "sample_image"]).to_dict()


def test_study_report_from_wandb_runs(make_config: Callable[..., DictConfig], tmp_path: Path) -> None:
    summary = {"status": "completed", "g_steps": 200, "wall_time_s": 3.5, "best/modes": 6.0, "best/high_quality": 0.5}

    def run(loss: str, trial: int) -> SimpleNamespace:
        overrides = [f"loss={loss}", f"study.trial={trial}", "search=lucic_wide", "dataset=ring"]
        return _wandb_run(make_config(*overrides), f"{loss}-{trial}", summary | {"overrides": overrides})

    runs = [run(loss, trial) for loss in ["ns", "wgan"] for trial in range(2)]
    report = write_report(LoadedRuns(load_runs_from_wandb("me/p", api=FakeApi(runs)), []), tmp_path, "W&B me/p")
    (section,) = report.sections
    assert list(section.table["n_search"]) == [2, 2]
    command = shlex.split(section.commands["wgan"])
    assert command == [
        "ganbench-train",
        "-m",
        "loss=wgan",
        "study.trial=0",
        "dataset=ring",
        "search=seeds",
        "seed=range(1,51)",
    ]


def test_wandb_summary_round_trips_to_the_record(make_config: Callable[..., DictConfig]) -> None:
    """What training publishes to W&B is what the W&B reader needs: the record comes back, overrides included."""
    overrides = ["loss=wgan", "study.trial=2", "optim.lr=0.0003", "search=lucic_wide"]
    config = OmegaConf.to_container(make_config(*overrides), resolve=True)
    published = RunRecord(status="completed", loss="wgan", dataset="ring", model="mlp", seed=0, overrides=overrides)
    published.g_steps, published.primary_metric = 5000, "modes"
    published.best = {"g_step": 4000.0, "modes": 7.0, "high_quality": 0.5}
    published.final = {"g_step": 5000.0, "modes": 6.0, "high_quality": 0.4}
    published.objective = search_objective(published, 0.0)
    published.warnings = ["samples off the data (mean 0.50 vs 0.00, gap 0.71 data spreads)"]
    read = wandb_record(config, wandb_summary(published))
    assert read is not None
    assert (read.status, read.overrides, read.objective, read.g_steps) == ("completed", overrides, 7.0, 5000)
    assert (read.best, read.final, read.trial, read.phase) == (published.best, published.final, 2, "wide")
    assert read.warnings == published.warnings
