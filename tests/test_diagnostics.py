"""The learned-nothing checks (ganbench.diagnostics) and G's BatchNorm statistics at evaluation (ganbench.batch_norm),
against hand-computed values, and both in a real run's record and result line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ganbench.batch_norm import evaluation_generator
from ganbench.console import result_line
from ganbench.diagnostics import DIAGNOSTIC_KEYS, SampleDiagnostics, headline, pairwise_auc, warnings_of
from ganbench.nets.infogan import InfoGANGenerator
from ganbench.record import RunRecord
from ganbench.run import train
from tests.helpers.cli import FAST


def test_pairwise_auc_counts_pairs_and_ties_half() -> None:
    # pairs (real, fake): (1, 0) yes, (1, 2) no, (2, 0) yes, (2, 2) tie → (1 + 0 + 1 + 0.5) / 4
    assert pairwise_auc(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 2.0])).item() == pytest.approx(0.625)
    assert pairwise_auc(torch.ones(5), torch.ones(3)).item() == pytest.approx(0.5)


def _diagnostics(real: torch.Tensor) -> SampleDiagnostics:
    diagnostics = SampleDiagnostics(num_real=len(real))
    diagnostics.setup(real, torch.device("cpu"))
    return diagnostics


def _checked(diagnostics: SampleDiagnostics, fake: torch.Tensor) -> dict[str, float]:
    diagnostics.reset()
    for chunk in fake.split(3):  # streamed in chunks, as the evaluation does
        diagnostics.update(chunk)
    return diagnostics.compute(d_auc=0.7)


def test_moments_by_hand() -> None:
    real = torch.tensor([[0.0, 0.0], [2.0, 4.0]])  # per feature: means (1, 2), stds (1, 2)
    result = _checked(_diagnostics(real), torch.tensor([[1.0, 2.0], [1.0, 2.0]]))  # the real means, no spread
    assert result["real_mean"] == pytest.approx(1.5)
    assert result["real_std"] == pytest.approx(((0 + 0 + 4 + 16) / 4 - 1.5**2) ** 0.5)
    assert result["fake_mean"] == pytest.approx(1.5) and result["fake_std"] == pytest.approx(0.5)
    assert result["spread_ratio"] == 0.0 and result["mean_gap"] == 0.0
    assert result["collapsed"] == 1.0 and result["off_data"] == 0.0 and result["d_auc"] == 0.7


def test_samples_like_the_data_pass_and_grey_noise_or_one_image_fail() -> None:
    rng = torch.Generator().manual_seed(0)
    images = torch.where(torch.rand(400, 1, 8, 8, generator=rng) < 0.2, -1.0, 1.0)  # dark shapes on light ground
    diagnostics = _diagnostics(images[:200])
    like_data = _checked(diagnostics, images[200:])
    assert 0.9 < like_data["spread_ratio"] < 1.1 and like_data["mean_gap"] < 0.2  # sampling noise: √(2/200)
    assert not warnings_of(like_data)

    grey_noise = _checked(diagnostics, -0.6 + 0.8 * torch.rand(200, 1, 8, 8, generator=rng))
    assert grey_noise["off_data"] == 1.0 and grey_noise["mean_gap"] > 1
    assert warnings_of(grey_noise) == [
        f"samples off the data (mean {grey_noise['fake_mean']:.2f} vs {grey_noise['real_mean']:.2f}, "
        f"gap {grey_noise['mean_gap']:.2g} data spreads)"
    ]
    one_image = _checked(diagnostics, images[:1].expand(200, -1, -1, -1))
    assert one_image["collapsed"] == 1.0 and one_image["spread_ratio"] == 0.0
    assert warnings_of(one_image)[0].startswith("collapsed generator (sample spread 0 of the data's)")


def test_a_diverged_generator_is_named_as_such() -> None:
    entry = {"spread_ratio": None, "mean_gap": None, "fake_mean": None, "collapsed": 1.0, "off_data": 1.0}
    assert warnings_of(entry) == ["non-finite samples (the generator diverged)"]  # NaN is null in the JSON record


def test_headline_keeps_the_protocol_metrics_only() -> None:
    entry = {"g_step": 10.0, "f1": 0.5, "precision@1.5": 0.7, **dict.fromkeys(DIAGNOSTIC_KEYS, 0.0)}
    assert headline(entry) == {"f1": 0.5}
    assert headline(entry, primary="mean_gap") == {"f1": 0.5, "mean_gap": 0.0}, "a protocol may rank by a diagnostic"


def _trained_like_generator() -> InfoGANGenerator:
    """An InfoGAN G whose running BN statistics are stale, as early in training with decay 0.999."""
    torch.manual_seed(0)
    generator = InfoGANGenerator(hidden=32, base_channels=4)
    generator.train()
    with torch.no_grad():
        generator(generator.sample_latent(16))
    return generator


def test_running_statistics_evaluate_the_trained_generator_itself() -> None:
    generator = _trained_like_generator()
    assert evaluation_generator(generator, "running", 64, 16, seed=1) is generator and not generator.training


def test_standing_statistics_are_the_population_statistics_of_fresh_latents() -> None:
    generator = _trained_like_generator()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    standing = evaluation_generator(generator, "standing", 64, 16, seed=1)
    latents = generator.sample_latent(64, torch.device("cpu"), torch.Generator().manual_seed(1))
    with torch.no_grad():
        first_layer = generator.net[0](latents)
    bn = standing.net[1]
    assert torch.allclose(bn.running_mean, first_layer.mean(0), atol=1e-5)
    # update_bn averages the batches' unbiased variances: 4 batches of 16
    batch_vars = torch.stack([chunk.var(0) for chunk in first_layer.split(16)]).mean(0)
    assert torch.allclose(bn.running_var, batch_vars, rtol=1e-4)
    assert not standing.training
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())  # training's state untouched


def test_batch_statistics_normalise_each_batch_in_eval_mode() -> None:
    generator = _trained_like_generator()
    batch = evaluation_generator(generator, "batch", 64, 16, seed=1)
    z = generator.sample_latent(8)
    with torch.no_grad():
        generator.train()
        expected = generator(z)
        assert torch.allclose(batch(z), expected, atol=1e-6) and not batch.training
    with pytest.raises(ValueError, match="running, standing, batch"):
        evaluation_generator(generator, "moving", 64, 16, seed=1)


def test_generator_without_batch_norm_is_evaluated_as_it_is() -> None:
    class Plain(InfoGANGenerator):
        def __init__(self) -> None:
            super().__init__(hidden=8, base_channels=2)
            self.net = nn.Sequential(nn.Linear(64, 784), nn.Unflatten(1, (1, 28, 28)))

    generator = Plain()
    assert evaluation_generator(generator, "standing", 64, 16, seed=1) is generator


def test_a_run_records_diagnostics_and_the_statistics_choice(make_config, tmp_path: Path) -> None:
    train(make_config(*FAST, "eval.generator_bn=standing"), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    for entry in summary["history"]:
        assert entry.keys() >= set(DIAGNOSTIC_KEYS)
        assert 0.0 <= entry["d_auc"] <= 1.0
    assert summary["protocol"]["generator_bn"] == "standing"
    assert summary["protocol"]["diagnostics"]["num_real"] == 1000
    assert summary["warnings"] == warnings_of(summary["final"])


def test_the_result_line_shows_d_accuracy_and_warnings() -> None:
    final = {"g_step": 5.0, "modes": 1.0, **dict.fromkeys(DIAGNOSTIC_KEYS, 0.0), "d_auc": 0.97}
    record = RunRecord(status="completed", loss="ns", dataset="ring", model="mlp", seed=0, g_steps=5)
    record.primary_metric, record.final, record.best = "modes", final, final
    record.warnings = ["collapsed generator (sample spread 0 of the data's)"]
    line = result_line(record)
    assert "final: modes 1 |" in line and "spread_ratio" not in line
    assert line.endswith("| D accuracy 0.97 | WARNING: collapsed generator (sample spread 0 of the data's)")
