"""BEGAN: the autoencoder discriminator, how loss=began selects it, and its k_t through checkpoints and logs.

The objective's formulas are tested against hand-computed values in tests/test_losses.py (BEGAN section); the short
runs of every loss on ring and on 28-px images (tests/test_train.py) include began.
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from ganbench.data.mixtures import MixtureDataModule, ring
from ganbench.errors import UserError, find_user_error
from ganbench.losses import BoundaryEquilibrium, GANLoss
from ganbench.module import GANModule
from ganbench.nets.autoencoder import (
    AutoencoderDiscriminator,
    InfoGANAutoencoder,
    MLPAutoencoder,
    began_discriminator,
)
from ganbench.nets.mlp import MLPGenerator
from ganbench.run import build_module, train
from tests.helpers.cli import FAST

# --------------------------------------------------------------------------------------------------- networks


def test_autoencoder_score_is_minus_the_mean_l1_reconstruction_error() -> None:
    """A fixed linear autoencoder: code e = x₁ + 2x₂, reconstruction (e, 1 − e)."""
    autoencoder = MLPAutoencoder(data_dim=2, num_hidden=0, embedding_dim=1)
    encoder, decoder = autoencoder.encoder[0], autoencoder.decoder[0]
    with torch.no_grad():
        encoder.weight.copy_(torch.tensor([[1.0, 2.0]]))
        encoder.bias.zero_()
        decoder.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        decoder.bias.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, -0.25]])
    # (1, 0): e = 1, recon (1, 0), L = 0. (0, 1): e = 2, recon (2, −1), L = (2 + 2)/2. (0.5, −0.25): e = 0,
    # recon (0, 1), L = (0.5 + 1.25)/2.
    expected = [-0.0, -2.0, -0.875]
    assert autoencoder(x).tolist() == pytest.approx(expected)
    assert autoencoder.reconstruct(x).flatten().tolist() == pytest.approx([1.0, 0.0, 2.0, -1.0, 0.0, 1.0])


@pytest.mark.parametrize(("image_size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_infogan_autoencoder_scores_each_image_by_its_reconstruction(image_size: int, channels: int) -> None:
    torch.manual_seed(0)
    autoencoder = InfoGANAutoencoder(image_size, channels, base_channels=4, embedding_dim=3)
    x = torch.rand(5, channels, image_size, image_size) * 2 - 1
    reconstruction = autoencoder.reconstruct(x)
    assert reconstruction.shape == x.shape
    assert reconstruction.abs().max() < 1.0  # 2σ − 1: the data's range
    score = autoencoder(x)
    assert score.shape == (5,)
    torch.testing.assert_close(score, -(x - reconstruction).abs().mean(dim=(1, 2, 3)))
    assert (score < 0).all()


def test_infogan_autoencoder_is_compare_gan_v1s_began_discriminator() -> None:
    """conv 64 → LReLU → conv 128 → fc h → LReLU | fc 128·7·7 → LReLU → deconv 64 → LReLU → deconv c → 2σ − 1,
    BN off by default and at the three places of v1 when on."""
    plain = InfoGANAutoencoder(28, 1)
    kinds = [type(layer).__name__ for layer in [*plain.encoder, *plain.decoder] if not isinstance(layer, nn.Identity)]
    assert kinds == [
        *("Conv2d", "LeakyReLU", "Conv2d", "Flatten", "Linear", "LeakyReLU"),
        *("Linear", "LeakyReLU", "Unflatten", "ConvTranspose2d", "LeakyReLU", "ConvTranspose2d", "_TwoSigmoidMinusOne"),
    ]
    assert plain.encoder[4].out_features == 64 and plain.decoder[0].out_features == 128 * 7 * 7
    with_bn = InfoGANAutoencoder(28, 1, batch_norm=True)
    assert sum(isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d) for layer in with_bn.modules()) == 3


def test_began_discriminator_follows_the_model() -> None:
    points = began_discriminator("mlp", data_dim=2)
    assert isinstance(points, MLPAutoencoder) and points.encoder[-1].out_features == 8
    images = began_discriminator("infogan_cpu", image_size=32, channels=3, base_channels=32, embedding_dim=16)
    assert isinstance(images, InfoGANAutoencoder)
    assert images.encoder[0].out_channels == 32 and images.encoder[4].out_features == 16
    with pytest.raises(UserError, match=r"model=\{mlp, infogan, infogan_cpu\}, not for model=dcgan"):
        began_discriminator("dcgan", image_size=32, channels=3)


# ---------------------------------------------------------------------------------------------------- config


def test_began_replaces_the_models_discriminator_on_points_and_images(make_config) -> None:
    ring_cfg = make_config("loss=began")
    assert set(ring_cfg.model.discriminator) >= {"_target_", "model", "embedding_dim"}
    assert "hidden_dim" not in ring_cfg.model.discriminator, "replaced, not merged into the MLP D's keys"
    assert isinstance(build_module(ring_cfg).discriminator, MLPAutoencoder)

    mnist = make_config("loss=began", "dataset=mnist", "model=infogan_cpu")
    assert "hidden" not in mnist.model.discriminator
    module = build_module(mnist)
    assert isinstance(module.discriminator, InfoGANAutoencoder)
    assert module.discriminator.encoder[0].out_channels == 32  # the model's width
    assert isinstance(module.loss.objective, BoundaryEquilibrium)
    assert (module.loss.objective.gamma, module.loss.objective.lambda_k) == (0.75, 1e-3)
    assert (mnist.training.n_critic, mnist.optim.lr, mnist.optim.beta1, mnist.d_batch_norm) == (5, 1e-4, 0.5, False)
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in module.discriminator.modules())

    other = make_config("loss=ns", "dataset=mnist")
    assert other.model.discriminator._target_ == "ganbench.nets.infogan.InfoGANDiscriminator", "only began's D"


def test_began_overrides_of_the_autoencoder_apply(make_config) -> None:
    cfg = make_config("loss=began", "model.discriminator.embedding_dim=3", "loss.objective.gamma=0.5")
    module = build_module(cfg)
    assert module.discriminator.encoder[-1].out_features == 3 and module.loss.objective.gamma == 0.5


def test_began_with_a_model_it_has_no_autoencoder_for_is_a_user_error(make_config) -> None:
    cfg = make_config("loss=began", "dataset=cifar10", "model=dcgan")
    with pytest.raises(Exception) as raised:
        build_module(cfg)
    assert "not for model=dcgan" in str(find_user_error(raised.value))


# ------------------------------------------------------------------------------------- state through training


def began_module(**objective: float) -> GANModule:
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    return GANModule(
        generator=MLPGenerator(hidden_dim=16, num_hidden=1),
        discriminator=MLPAutoencoder(hidden_dim=16, num_hidden=1),
        loss=GANLoss("began", BoundaryEquilibrium(**objective)),
        generator_optimizer=adam,
        discriminator_optimizer=adam,
        n_critic=2,
        g_step_budget=3,
    )


def test_k_moves_with_training_and_survives_a_checkpoint(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    module = began_module(gamma=1.0, lambda_k=0.1, k_init=0.5)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=-1,
        max_steps=100,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=MixtureDataModule(name="ring", mixture=ring(), batch_size=8))
    assert (module.g_steps, module.d_steps) == (3, 6)
    k = module.loss.objective.k
    assert 0.0 <= k <= 1.0 and k != 0.5, "six D steps moved k"

    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["gan_loss_state"] == {"objective": {"k": k}}
    path = tmp_path / "x.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=False)["gan_loss_state"] == {"objective": {"k": k}}

    restored = began_module(gamma=1.0, lambda_k=0.1, k_init=0.5)
    restored.on_load_checkpoint(checkpoint)
    assert restored.loss.objective.k == k

    older = {key: value for key, value in checkpoint.items() if key != "gan_loss_state"}
    before_the_state_was_saved = began_module(k_init=0.0)
    before_the_state_was_saved.on_load_checkpoint(older)
    assert before_the_state_was_saved.loss.objective.k == 0.0 and before_the_state_was_saved.g_steps == 3


def _final_state(run_dir: Path) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return {"loss": checkpoint["gan_loss_state"], "weights": checkpoint["state_dict"]}


@pytest.mark.slow
def test_a_resumed_began_run_continues_exactly(make_config, tmp_path: Path) -> None:
    """20 G steps, then launched again to 30, ends where 30 uninterrupted steps end: the same k_t and weights."""
    overrides = [*FAST, "loss=began", "loss.objective.gamma=1.0", "loss.objective.lambda_k=0.05"]
    resumed, uninterrupted = tmp_path / "resumed", tmp_path / "uninterrupted"
    resumed.mkdir(), uninterrupted.mkdir()
    train(make_config(*overrides), resumed)
    halfway = _final_state(resumed)["loss"]
    train(make_config(*overrides, "training.g_steps=30"), resumed)
    train(make_config(*overrides, "training.g_steps=30"), uninterrupted)
    first, second = _final_state(resumed), _final_state(uninterrupted)
    assert first["loss"] == second["loss"] != halfway
    for name, weight in second["weights"].items():
        assert torch.equal(first["weights"][name], weight), name


def test_short_began_run_on_ring_logs_k_and_convergence(make_config, tmp_path: Path) -> None:
    record = train(make_config("loss=began", *FAST, "logger=csv"), tmp_path)
    assert record.status == "completed" and record.g_steps == 20 and record.d_steps == 100
    assert all(math.isfinite(v) for k, v in record.final.items() if k != "reverse_kl")
    (metrics,) = tmp_path.glob("csv/version_0/metrics.csv")
    rows = [row for row in csv.DictReader(metrics.open()) if row.get("train/began_k")]
    assert rows, "train/began_k is logged"
    for row in rows:
        assert 0.0 <= float(row["train/began_k"]) <= 1.0
        assert math.isfinite(float(row["train/convergence"])) and float(row["train/convergence"]) >= 0.0
        assert float(row["train/d_real"]) <= 0.0, "D's output is −L(x), never positive"


def test_an_autoencoder_is_a_discriminator_for_the_module() -> None:
    """The seam: one score per example, so GANModule's D accuracy compares scores as for any D."""
    scores = MLPAutoencoder()(torch.randn(7, 2))
    assert scores.shape == (7,) and isinstance(MLPAutoencoder(), AutoencoderDiscriminator)
