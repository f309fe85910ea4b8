"""The VAE baseline (loss=vae): its ELBO by hand, its encoders, its config seam and short runs through the real
config, trainer, evaluation and run record."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from ganbench.analysis.runs import load_runs
from ganbench.budgeted_module import BudgetedModule
from ganbench.console import result_line
from ganbench.errors import UserError
from ganbench.losses import GANLoss, NonSaturating
from ganbench.module import GANModule
from ganbench.nets.base import Generator
from ganbench.nets.infogan import InfoGANDiscriminator, InfoGANGenerator
from ganbench.nets.mlp import MLPDiscriminator, MLPGenerator
from ganbench.report import write_report
from ganbench.run import build_module, train
from ganbench.vae import (
    ELBO,
    BernoulliLikelihood,
    ConvEncoder,
    GaussianLikelihood,
    MLPEncoder,
    NotAVAESetting,
    VAEModule,
    gaussian_kl,
)
from ganbench.validate import validate
from tests.helpers.cli import FAST
from tests.helpers.configs import DATASETS
from tests.helpers.image_files import write_mnist_like

IMAGE_RUN = ["dataset=mnist", "model=infogan_cpu", "eval=moments"]
TINY_IMAGES = ["logger=none", "training.g_steps=4", "eval.every_n_g_steps=2", "eval.num_samples=8"]


# ------------------------------------------------------------------------------------------------- the ELBO by hand


class _FixedEncoder(nn.Module):
    """μ = x·A, log σ² = x·B + c: a linear encoder of 3-D data into a 2-D latent, with fixed weights."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.3, 0.7]])
        self.b = torch.tensor([[0.1, 0.0], [-0.2, 0.3], [0.4, -0.1]])
        self.c = torch.tensor([-0.5, 0.2])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self.a, x @ self.b + self.c


class _FixedDecoder(Generator):
    """G(z) = z·W + v, or 2·sigmoid(z·W + v) − 1 (InfoGAN's output map) for pixel data."""

    def __init__(self, squash: bool) -> None:
        super().__init__(latent_dim=2)
        self.w = nn.Parameter(torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.8, -1.1]]))
        self.v = nn.Parameter(torch.tensor([0.1, -0.2, 0.05]))
        self.squash = squash

    def pre_activation(self, z: Tensor) -> Tensor:
        return z @ self.w + self.v

    def forward(self, z: Tensor) -> Tensor:
        out = self.pre_activation(z)
        return 2.0 * torch.sigmoid(out) - 1.0 if self.squash else out


X = torch.tensor([[0.5, -1.0, 0.9], [1.0, 0.0, -0.25], [-0.6, 0.4, 1.0]])  # three 3-D examples in [−1, 1]


def _reparameterised(encoder: _FixedEncoder, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """μ, log σ² and z = μ + σ·ε with the ε that the ELBO draws after ``torch.manual_seed(seed)``."""
    mean, log_var = encoder(X)
    torch.manual_seed(seed)
    eps = torch.randn(mean.shape)
    return mean, log_var, mean + torch.exp(0.5 * log_var) * eps


def _kl_by_hand(mean: Tensor, log_var: Tensor) -> Tensor:
    """½ Σ (μ² + σ² − log σ² − 1), one example at a time."""
    rows = []
    for mu, lv in zip(mean.tolist(), log_var.tolist(), strict=True):
        rows.append(0.5 * sum(m * m + math.exp(v) - v - 1.0 for m, v in zip(mu, lv, strict=True)))
    return torch.tensor(rows)


def test_elbo_with_a_gaussian_decoder_by_hand() -> None:
    encoder, decoder, std = _FixedEncoder(), _FixedDecoder(squash=False), 0.3
    mean, log_var, z = _reparameterised(encoder, seed=7)
    out = decoder(z).detach()
    nll = [
        sum(
            (t - o) ** 2 / (2 * std**2) + math.log(std) + 0.5 * math.log(2 * math.pi)
            for t, o in zip(xr, orow, strict=True)
        )
        for xr, orow in zip(X.tolist(), out.tolist(), strict=True)
    ]
    kl = _kl_by_hand(mean, log_var)

    torch.manual_seed(7)
    terms = ELBO("vae", GaussianLikelihood(std))(encoder, decoder, X)
    assert terms.reconstruction.item() == pytest.approx(sum(nll) / 3, rel=1e-5)
    assert terms.kl.item() == pytest.approx(kl.mean().item(), rel=1e-5)
    assert terms.total.item() == pytest.approx(sum(nll) / 3 + kl.mean().item(), rel=1e-5)
    terms.total.backward()
    assert decoder.w.grad is not None and torch.isfinite(decoder.w.grad).all(), "the loss reaches the decoder"


def test_elbo_with_a_bernoulli_decoder_by_hand() -> None:
    """On [0, 1]-rescaled pixels the Bernoulli NLL is the cross-entropy of the decoder's logit (InfoGAN's output is
    2·sigmoid(logit) − 1), up to the eps squeeze."""
    encoder, decoder = _FixedEncoder(), _FixedDecoder(squash=True)
    mean, log_var, z = _reparameterised(encoder, seed=3)
    p = (decoder(z).detach() + 1) / 2
    t = (X + 1) / 2
    nll = [
        -sum(tt * math.log(pp) + (1 - tt) * math.log(1 - pp) for tt, pp in zip(trow, prow, strict=True))
        for trow, prow in zip(t.tolist(), p.tolist(), strict=True)
    ]
    logits = F.binary_cross_entropy_with_logits(decoder.pre_activation(z).detach(), t, reduction="none").sum(1)

    torch.manual_seed(3)
    terms = ELBO("vae", BernoulliLikelihood())(encoder, decoder, X)
    assert terms.reconstruction.item() == pytest.approx(sum(nll) / 3, rel=1e-5)
    assert terms.reconstruction.item() == pytest.approx(logits.mean().item(), rel=1e-5)
    assert terms.kl.item() == pytest.approx(_kl_by_hand(mean, log_var).mean().item(), rel=1e-5)


def test_bernoulli_keeps_a_finite_loss_and_a_gradient_on_saturated_pixels() -> None:
    output = torch.tensor([[-1.0, 1.0, -1.0, 1.0]], requires_grad=True)  # fully saturated, two of them wrong
    x = torch.tensor([[-1.0, 1.0, 1.0, -1.0]])
    nll = BernoulliLikelihood(eps=1e-6).negative_log_likelihood(output, x)
    assert nll.item() == pytest.approx(-2 * math.log(1 - 1e-6) - 2 * math.log(1e-6), rel=1e-3)  # float32 near 1
    nll.sum().backward()
    assert output.grad is not None and (output.grad[0, 2:].abs() > 0).all()


def test_gaussian_likelihood_is_the_normal_log_density() -> None:
    torch.manual_seed(0)
    out, x = torch.randn(5, 4), torch.randn(5, 4)
    expected = -Normal(out, 0.2).log_prob(x).sum(1)
    assert torch.allclose(GaussianLikelihood(0.2).negative_log_likelihood(out, x), expected, atol=1e-5)


def test_kl_term_is_the_closed_form() -> None:
    torch.manual_seed(0)
    mean, log_var = torch.randn(6, 5), torch.randn(6, 5)
    q, prior = Normal(mean, torch.exp(0.5 * log_var)), Normal(torch.zeros(5), torch.ones(5))
    assert torch.allclose(gaussian_kl(mean, log_var), kl_divergence(q, prior).sum(1), atol=1e-5)
    assert torch.allclose(gaussian_kl(mean, log_var), _kl_by_hand(mean, log_var), atol=1e-5)
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0, "q = prior: no KL"


# ----------------------------------------------------------------------------------------------------- the networks


def _layout(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(type(m).__name__, tuple(m.weight.shape)) for m in module.modules() if hasattr(m, "weight")]


@pytest.mark.parametrize(("image_size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_conv_encoder_is_infogan_d_with_a_gaussian_head(image_size: int, channels: int) -> None:
    encoder = ConvEncoder(image_size, channels, latent_dim=64, hidden=512, base_channels=32)
    d = InfoGANDiscriminator(image_size, channels, hidden=512, base_channels=32)
    assert _layout(encoder)[:-1] == _layout(d)[:-1]
    assert _layout(encoder)[-1] == ("Linear", (128, 512)) and _layout(d)[-1] == ("Linear", (1, 512))
    mean, log_var = encoder(torch.rand(3, channels, image_size, image_size) * 2 - 1)
    assert mean.shape == log_var.shape == (3, 64)


def test_mlp_encoder_is_the_mlp_d_with_a_gaussian_head() -> None:
    encoder, d = MLPEncoder(data_dim=2, latent_dim=2), MLPDiscriminator()
    assert [s for _, s in _layout(encoder)][:-1] == [s for _, s in _layout(d)][:-1]
    mean, log_var = encoder(torch.randn(7, 2))
    assert mean.shape == log_var.shape == (7, 2)


def _vae(generator: Generator, **kwargs: int) -> VAEModule:
    adam = partial(torch.optim.Adam, lr=1e-3)
    return VAEModule(generator, MLPEncoder(), ELBO("vae", GaussianLikelihood(0.1)), adam, adam, **kwargs)


def test_a_uniform_prior_and_several_batches_per_step_are_refused() -> None:
    with pytest.raises(NotAVAESetting, match=r"model\.generator\.latent_distribution=normal"):
        _vae(MLPGenerator(latent_distribution="uniform"))
    with pytest.raises(NotAVAESetting, match=r"training\.n_critic=1"):
        _vae(MLPGenerator(), n_critic=5)
    assert issubclass(NotAVAESetting, UserError), "the CLI reports it as bad input, not as a crash"


def test_both_training_modules_offer_what_the_callbacks_read() -> None:
    adam = partial(torch.optim.Adam, lr=1e-3)
    gan = GANModule(MLPGenerator(), MLPDiscriminator(), GANLoss("ns", NonSaturating()), adam, adam)
    vae = _vae(MLPGenerator())
    assert isinstance(gan, BudgetedModule) and isinstance(vae, BudgetedModule)
    assert (vae.g_steps, vae.d_steps, vae.remaining_g_steps, vae.diverged) == (0, 0, 1000, False)
    assert vae.sampling_generator is vae.generator and math.isnan(vae.take_discriminator_auc())


# ------------------------------------------------------------------------------------------------------ the config


@pytest.mark.parametrize("dataset", DATASETS)
def test_vae_composes_with_every_dataset(make_config, dataset: str) -> None:
    """As tests/test_config.py checks every loss, with the VAE's own parts: the data decides encoder and likelihood."""
    cfg = make_config("loss=vae", f"dataset={dataset}")
    validate(cfg)
    module = build_module(cfg)
    assert isinstance(module, VAEModule) and module.loss.name == cfg.loss.name == "vae"
    assert module.n_critic == cfg.training.n_critic == 1
    optimizers = module.configure_optimizers()
    assert [group["lr"] for opt in optimizers for group in opt.param_groups] == [cfg.optim.lr] * 2
    assert module.generator.latent_distribution == "normal"
    points = cfg.dataset.get("image_size") is None
    assert isinstance(module.encoder, MLPEncoder if points else ConvEncoder)
    assert isinstance(module.loss.likelihood, GaussianLikelihood if points else BernoulliLikelihood)
    assert module.encoder.latent_dim == module.generator.latent_dim


def test_vae_defaults_are_compare_gans(make_config) -> None:
    """compare_gan v1's VAEHyperParams: lr 5e-5, β1 0.5 (a 2-D mixture's shared lr still wins, as for every loss)."""
    mnist = make_config("loss=vae", "dataset=mnist")
    assert (mnist.optim.lr, mnist.optim.beta1, mnist.d_batch_norm) == (5e-5, 0.5, True)
    assert isinstance(build_module(mnist).generator, InfoGANGenerator)
    ring = make_config("loss=vae")
    assert (ring.optim.lr, ring.loss.likelihood.std) == (1e-3, ring.dataset.mixture.std)
    narrow = build_module(make_config("loss=vae", *IMAGE_RUN))
    assert narrow.encoder.net[-1].in_features == 512, "model=infogan_cpu: the encoder at the model's width"


def test_gan_losses_still_build_a_gan_module(make_config) -> None:
    cfg = make_config("loss=ns")
    assert "training_module" not in cfg and isinstance(build_module(cfg), GANModule)


def test_a_uniform_prior_on_the_command_line_is_a_user_error(make_config) -> None:
    with pytest.raises(UserError, match=r"latent_distribution=normal"):
        build_module(make_config("loss=vae", "dataset=mnist", "model.generator.latent_distribution=uniform"))


# ------------------------------------------------------------------------------------------------------- real runs


def _read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_short_run_on_ring_writes_a_complete_record(make_config, tmp_path: Path) -> None:
    record = train(make_config("loss=vae", *FAST), tmp_path)
    summary = _read_summary(tmp_path)
    assert summary["status"] == record.status == "completed"
    assert (summary["loss"], summary["g_steps"], summary["d_steps"]) == ("vae", 20, 0)
    assert [entry["g_step"] for entry in summary["history"]] == [10, 20]
    assert summary["final"] == summary["history"][-1]
    assert summary["final"]["d_auc"] is None, "no D: its accuracy is NaN, stored as null"
    assert all(math.isfinite(v) for k, v in summary["final"].items() if k not in ("d_auc", "reverse_kl"))
    assert summary["objective"] == summary["best"]["modes"]
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() and (tmp_path / summary["sample_image"]).exists()
    line = result_line(record)
    assert line.startswith("vae on ring: completed after 20 G steps") and "D accuracy" not in line


def test_short_run_on_28_px_images(make_config, tmp_path: Path) -> None:
    """InfoGAN's G as the decoder and the conv encoder on MNIST's real IDX format (12 training images)."""
    write_mnist_like(tmp_path / "data", "MNIST", train_images=12)
    cfg = make_config(
        "loss=vae", *IMAGE_RUN, f"data_root={tmp_path / 'data'}", *TINY_IMAGES,
        "dataset.batch_size=2", "eval.num_diagnostic_real=4",
    )  # fmt: skip
    (tmp_path / "run").mkdir()
    record = train(cfg, tmp_path / "run")
    assert record.status == "completed" and (record.g_steps, record.d_steps) == (4, 0)
    assert [entry["g_step"] for entry in record.history] == [2, 4]
    assert record.final is not None and record.final["d_auc"] is None  # NaN, read back from JSON
    assert all(math.isfinite(v) for k, v in record.final.items() if k != "d_auc")
    assert (tmp_path / "run" / record.sample_image).exists()


def test_resume_continues_the_g_steps(make_config, tmp_path: Path) -> None:
    first = train(make_config("loss=vae", *FAST), tmp_path)
    weights = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert weights["gan_steps"] == {"g_steps": 20, "d_steps": 0}
    assert any(key.startswith("encoder.") for key in weights["state_dict"])
    second = train(make_config("loss=vae", *FAST, "training.g_steps=30"), tmp_path)
    assert (first.g_steps, second.g_steps, second.d_steps) == (20, 30, 0)
    assert [entry["g_step"] for entry in second.history] == [10, 20, 30], "the history survives the resume"
    assert second.history[:2] == first.history
    again = train(make_config("loss=vae", *FAST, "training.g_steps=30"), tmp_path)
    assert again.g_steps == 30 and again.history == second.history, "a finished run takes no further step"
    (tmp_path / "uninterrupted").mkdir()
    uninterrupted = train(make_config("loss=vae", *FAST, "training.g_steps=30"), tmp_path / "uninterrupted")
    assert uninterrupted.history == second.history, "counters, weights, optimizers and noise RNG all resumed"


def test_ema_decoder_is_the_one_evaluated(make_config, tmp_path: Path) -> None:
    cfg = make_config("loss=vae", *FAST, "training.ema_decay=0.9")
    module = build_module(cfg)
    assert module.generator_ema is not None and module.sampling_generator is module.generator_ema.module
    assert train(cfg, tmp_path).status == "completed"


def test_diverged_vae_is_recorded_not_raised(make_config, tmp_path: Path) -> None:
    record = train(make_config("loss=vae", "optim.lr=1e6", *FAST), tmp_path)
    assert record.status == "diverged" and record.g_steps < 20
    assert _read_summary(tmp_path)["status"] == "diverged"


def test_report_shows_a_vae_run_next_to_a_gan_run(make_config, tmp_path: Path) -> None:
    for loss in ("vae", "ns"):
        (tmp_path / "runs" / loss).mkdir(parents=True)
        train(make_config(f"loss={loss}", *FAST), tmp_path / "runs" / loss)
    report = write_report(load_runs(tmp_path / "runs"), tmp_path / "report", "vae and ns")
    assert "samples.png" in report.files
    table = pd.read_csv(tmp_path / "report" / "comparison.csv").set_index("loss")
    assert set(table.index) == {"vae", "ns"} and (table["status"] == "completed").all()
    assert math.isnan(table.loc["vae", "final_d_auc"]) and math.isfinite(table.loc["ns", "final_d_auc"])
    assert math.isfinite(table.loc["vae", "final_modes"])
