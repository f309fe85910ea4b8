"""Studies: the search configs draw the documented ranges deterministically, and real sweeps (ganbench's Optuna
sweeper with the basic launcher; tests/test_sweep_slots.py runs one on parallel processes) record every run, survive
failures and skip finished runs when relaunched."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from ganbench.record import record_from_config
from ganbench.search import SearchError, draw_trial, search_losses, trial_settings
from ganbench.train import CONFIG_DIR
from tests.helpers.cli import FAST, run_cli
from tests.helpers.configs import choices

LOSSES = ["mm", "ns", "lsgan", "wgan", "wgan_gp"]


def sweep_config(*overrides: str) -> DictConfig:
    """The config the sweeper sees (hydra node included), composed as ganbench-train -m does."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def draw(cfg: DictConfig, n_trials: int) -> list[dict]:
    """Ask the configured sampler for n_trials trials, as ganbench's sweeper does."""
    losses = search_losses(cfg.search, choices("loss"))
    sampler = optuna.samplers.RandomSampler(seed=cfg.hydra.sweeper.sampler.seed)
    study = optuna.create_study(sampler=sampler, direction=cfg.hydra.sweeper.direction)
    return [trial_settings(draw_trial(study, cfg.search, losses)) for _ in range(n_trials)]


def test_wide_search_deals_trials_to_losses_and_draws_the_reference_ranges() -> None:
    cfg = sweep_config("search=lucic_wide")
    assert cfg.hydra.sweeper.n_trials == 100 * len(LOSSES)
    assert cfg.hydra.sweeper.direction == "maximize"  # modes on the ring
    trials = draw(cfg, 10 * len(LOSSES))
    for number, params in enumerate(trials):
        loss, index = LOSSES[number % len(LOSSES)], number // len(LOSSES)
        assert (params["loss"], params["study.trial"]) == (loss, index)
        if index == 0:  # the loss's default setting: no hyperparameter override at all
            assert set(params) == {"loss", "study.trial"}
            continue
        assert 1e-5 <= params["optim.lr"] <= 1e-2
        assert 0.0 <= params["optim.beta1"] <= 1.0
        assert params["training.n_critic"] in (1, 5)
        assert params["d_batch_norm"] in (True, False)
        assert ("loss.constraint.clip" in params) == (loss == "wgan")
        assert ("loss.penalty.weight" in params) == (loss == "wgan_gp")
        if loss == "wgan":
            assert 1e-3 <= params["loss.constraint.clip"] <= 1.0
        if loss == "wgan_gp":
            assert 0.1 <= params["loss.penalty.weight"] <= 100.0
    drawn = [t for t in trials if t["study.trial"] > 0]
    learning_rates = [math.log10(t["optim.lr"]) for t in drawn]
    assert min(learning_rates) < -4.0 and max(learning_rates) > -3.0  # log-uniform over three decades
    assert {t["training.n_critic"] for t in drawn} == {1, 5}


def test_search_is_deterministic_in_its_sampler_seed() -> None:
    first = draw(sweep_config("search=lucic_wide"), 12)
    assert draw(sweep_config("search=lucic_wide"), 12) == first
    assert draw(sweep_config("search=lucic_wide", "search.sampler_seed=1"), 12) != first


def test_narrow_search_fixes_beta1_and_d_steps_and_turns_bn_off_for_penalties() -> None:
    cfg = sweep_config("search=lucic_narrow", "dataset=grid")
    assert cfg.hydra.sweeper.n_trials == 50 * len(LOSSES)
    for params in draw(cfg, 4 * len(LOSSES))[len(LOSSES) :]:
        assert 1e-4 <= params["optim.lr"] <= 1e-3
        assert params["optim.beta1"] == 0.5 and params["training.n_critic"] == 1
        assert params.get("d_batch_norm") == (False if params["loss"] == "wgan_gp" else None)
        if params["loss"] == "wgan":
            assert 1e-2 <= params["loss.constraint.clip"] <= 1.0
        if params["loss"] == "wgan_gp":
            assert 0.1 <= params["loss.penalty.weight"] <= 10.0


def test_image_protocols_minimise_fid_and_score_failures_with_the_papers_value() -> None:
    cfg = sweep_config("search=lucic_wide", "dataset=cifar10")
    assert cfg.hydra.sweeper.direction == "minimize" and cfg.eval.worst_score == 31337


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.losses=[ns,nosuchloss]", "must name losses of conf/loss/"),
        ("search.losses=[]", "must name losses"),
        ("search.space.d_batch_norm={type:float}", "search space entry d_batch_norm=.* is invalid; use a constant"),
        ("+search.per_loss.ns={optim.lr:-1}", r"search space optim.lr=-1 is invalid: it must be a finite number > 0"),
        ("search.space={optim.beta1:{type:float,low:0.5,high:1.5}}", r"range \[0.5, 1.5\] leaves a finite number in"),
        ("search.space={optim.lr:{type:float,low:0,high:1,log:true}}", "a log range needs low > 0"),
    ],
)
def test_bad_search_definitions_are_refused_with_the_fix(override: str, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        draw(sweep_config("search=lucic_wide", "search.losses=[ns]", override), 2)


def test_a_loss_may_fix_a_key_that_the_others_search() -> None:
    """The VAE takes no D steps, so it fixes training.n_critic=1 while the GANs draw it from {1, 5}."""
    trials = draw(sweep_config("search=lucic_wide", "search.losses=[ns,vae]"), 8)
    assert {t["training.n_critic"] for t in trials if t["loss"] == "vae" and t["study.trial"] > 0} == {1}
    assert all(t["training.n_critic"] in (1, 5) for t in trials if t["study.trial"] > 0)


def test_categorical_choices_that_differ_between_losses_are_refused() -> None:
    cfg = sweep_config(
        "search=lucic_wide",
        "search.losses=[ns,mm]",
        "+search.per_loss.ns={training.n_critic:{type:categorical,choices:[1,2]}}",
    )
    with pytest.raises(SearchError, match=r"training.n_critic: mm draws from \[1, 5\] and ns from \[1, 2\]"):
        draw(cfg, 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("loss=ns", "choose them with search.losses=[...] instead of loss=..."),
        ("seed=1,2", "seed=1,2: a search draws its trials from search.space; give a range there"),
    ],
)
def test_a_search_refuses_command_lines_that_its_trials_would_override(
    tmp_path: Path, argument: str, message: str
) -> None:
    result = run_cli("ganbench-train", "-m", "search=lucic_wide", argument, *FAST, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()  # refused before any run


def records(root: Path) -> dict[str, dict]:
    return {p.parent.relative_to(root).as_posix(): json.loads(p.read_text()) for p in root.rglob("summary.json")}


SEARCH = ["-m", "search=lucic_wide", "search.trials_per_loss=2", "search.losses=[ns,wgan]", *FAST]


@pytest.mark.slow
def test_tiny_search_end_to_end_then_relaunch_skips_finished_runs(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", *SEARCH, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "A new study created" not in result.stderr  # Optuna's INFO lines are silenced like the other libraries'
    study_dir = "runs/studies/ring/wide"
    assert result.stdout.strip().endswith(
        f"{study_dir}: 4 runs: 4 completed | this launch: 4 ran | report: ganbench-report {study_dir}"
    )
    study = tmp_path / "runs/studies/ring/wide"
    runs = records(study)
    assert sorted(runs) == ["ns/0", "ns/1", "wgan/0", "wgan/1"]
    for name, record in runs.items():
        loss, trial = name.split("/")
        assert (record["loss"], record["trial"], record["study"], record["phase"]) == (loss, int(trial), "ring", "wide")
        assert record["status"] == "completed" and record["objective"] == record["best"]["modes"]
        assert ("optim.lr=" in " ".join(record["overrides"])) == (trial == "1")  # trial 0 = the loss's defaults
    assert runs["wgan/0"]["hyperparameters"] == {
        "optim.lr": 1e-3,  # the ring's learning rate for every loss
        "optim.beta1": 0.5,
        "training.n_critic": 5,
        "d_batch_norm": True,
        "loss.constraint.clip": 0.01,
    }
    results = OmegaConf.load(study / "optimization_results.yaml")
    assert results.best_value == max(r["objective"] for r in runs.values())

    written = {name: (study / name / "summary.json").stat().st_mtime_ns for name in runs}
    again = run_cli("ganbench-train", *SEARCH, "search.trials_per_loss=3", cwd=tmp_path)  # a bigger budget
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("not trained again") == 4
    assert {name: (study / name / "summary.json").stat().st_mtime_ns for name in runs} == written
    assert sorted(records(study)) == ["ns/0", "ns/1", "ns/2", "wgan/0", "wgan/1", "wgan/2"]


@pytest.mark.slow
def test_failed_run_inside_a_search_is_recorded_with_the_worst_score(tmp_path: Path) -> None:
    search_dir = tmp_path / "my_conf" / "search"
    search_dir.mkdir(parents=True)
    (search_dir / "broken.yaml").write_text(
        "# @package _global_\ndefaults:\n  - lucic_wide\n  - _self_\n"
        "search:\n  per_loss:\n    wgan:\n      trainer.precision: 16-mixed\n"  # valid alone, not on the CPU
    )
    result = run_cli(
        "ganbench-train",
        "-m",
        f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]",
        "search=broken",
        "search.trials_per_loss=2",
        "search.losses=[ns,wgan]",
        *FAST,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = records(tmp_path / "runs/studies/ring/wide")
    assert len(runs) == 4
    assert runs["wgan/1"]["status"] == "failed" and runs["wgan/1"]["objective"] == 0
    assert "trainer.precision='16-mixed' is invalid" in runs["wgan/1"]["error"]
    assert all(runs[name]["status"] == "completed" for name in ("ns/0", "ns/1", "wgan/0"))
    assert (tmp_path / "runs/studies/ring/wide/optimization_results.yaml").exists()  # the sweep went on to the end


@pytest.mark.slow
def test_seeds_phase_reruns_one_setting_with_several_seeds(tmp_path: Path) -> None:
    result = run_cli(
        "ganbench-train", "-m", "search=seeds", "loss=wgan", "optim.lr=0.002", "seed=range(1,3)", *FAST, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = records(tmp_path / "runs/studies/ring/seeds")
    assert sorted(runs) == ["wgan/seed1", "wgan/seed2"]
    assert {r["seed"] for r in runs.values()} == {1, 2}
    assert all(r["phase"] == "seeds" and r["hyperparameters"]["optim.lr"] == 0.002 for r in runs.values())


def test_seeds_phase_of_a_preset_study_composes_and_records_its_setting(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("experiment=study_cpu", "search=seeds", "loss=wgan", "optim.lr=0.002")
    assert (cfg.study.name, cfg.study.phase) == ("ring_cpu", "seeds")
    assert record_from_config(cfg, "completed", []).hyperparameters["optim.lr"] == 0.002


@pytest.mark.slow
def test_a_run_stopped_by_its_time_limit_is_timed_out_and_resumes(tmp_path: Path) -> None:
    limit = ["training.time_limit=00:00:00:02", "training.g_steps=100000"]
    args = ["-m", "search=seeds", *limit, "logger=none", *FAST[2:]]
    first = run_cli("ganbench-train", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "runs/studies/ring/seeds/ns/seed0/summary.json"
    stopped = json.loads(run.read_text())
    assert stopped["status"] == "timed_out" and stopped["objective"] == 0 and "launch it again" in stopped["error"]
    second = run_cli("ganbench-train", *args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(run.read_text())["g_steps"] > stopped["g_steps"]  # resumed, not restarted nor skipped


@pytest.mark.slow
def test_multirun_refuses_ddp_that_would_replay_the_sweep(tmp_path: Path) -> None:
    result = run_cli("ganbench-train", "-m", "+trainer.strategy=ddp", *FAST, cwd=tmp_path)
    record = next(iter(records(tmp_path / "runs").values()))
    assert record["status"] == "failed" and "replays the whole sweep" in record["error"]
    assert "trainer=ddp" in result.stderr
