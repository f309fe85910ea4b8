"""Image architectures: shapes and ranges, Lucic et al.'s InfoGAN layers, init, spectral norm, configs, training."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader

from ganbench.errors import UserError
from ganbench.losses import GANLoss, GradientPenalty, Hinge, NonSaturating, Wasserstein
from ganbench.module import GANModule
from ganbench.nets import dcgan, infogan, resnet
from ganbench.nets.base import Generator
from ganbench.nets.mlp import ImageMLPDiscriminator, ImageMLPGenerator
from ganbench.train import CONFIG_DIR

NETS: dict[str, tuple[type[Generator], type[nn.Module]]] = {
    "infogan": (infogan.InfoGANGenerator, infogan.InfoGANDiscriminator),
    "dcgan": (dcgan.DCGANGenerator, dcgan.DCGANDiscriminator),
    "resnet": (resnet.ResNetGenerator, resnet.ResNetDiscriminator),
}
SUPPORTED = {"infogan": infogan.SUPPORTED_SIZES, "dcgan": tuple(dcgan.GEOMETRY), "resnet": resnet.SUPPORTED_SIZES}
# (model, image size, channels): every supported size, with the channels of the data sets that use it.
CASES = [
    ("infogan", 28, 1),
    ("infogan", 32, 3),
    ("infogan", 64, 3),
    ("dcgan", 28, 1),
    ("dcgan", 32, 3),
    ("dcgan", 64, 3),
    ("resnet", 32, 3),
]
BATCH = 4
# N(0, σ) cut at ±2σ (TF's truncated_normal_initializer) has standard deviation ≈ 0.8796·σ.
_PHI_2 = math.exp(-2.0) / math.sqrt(2.0 * math.pi)
TRUNCATED_STD_RATIO = math.sqrt(1.0 - 4.0 * _PHI_2 / math.erf(2.0 / math.sqrt(2.0)))


def build(model: str, size: int, channels: int, **d_kwargs: bool) -> tuple[Generator, nn.Module]:
    make_g, make_d = NETS[model]
    return make_g(image_size=size, channels=channels), make_d(image_size=size, channels=channels, **d_kwargs)


def weight_layers(module: nn.Module, kind: type[nn.Module] | tuple[type[nn.Module], ...]) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


# ------------------------------------------------------------------------------------------- shapes and ranges


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_generator_and_discriminator_shapes(model: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    g, d = build(model, size, channels)
    z = g.sample_latent(BATCH)
    with torch.no_grad():
        fake = g(torch.cat([z, 1e3 * z]))  # large latents too: push the output squashing towards saturation
        out = d(fake)
    assert fake.shape == (2 * BATCH, channels, size, size)
    assert fake.min() >= -1.0 and fake.max() <= 1.0
    assert out.shape == (2 * BATCH,) and torch.isfinite(out).all()


@pytest.mark.parametrize("model", sorted(NETS))
def test_unsupported_size_names_the_supported_ones(model: str) -> None:
    sizes = ", ".join(str(s) for s in sorted(SUPPORTED[model]))
    for make in NETS[model]:
        with pytest.raises(UserError, match=rf"{model} supports image_size in \{{{sizes}\}}, got 48"):
            make(image_size=48, channels=3)


# ---------------------------------------------------------------------------------------- InfoGAN = the paper


def _layer_types(net: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in net]


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_infogan_discriminator_is_the_papers(size: int, channels: int) -> None:
    d = infogan.InfoGANDiscriminator(image_size=size, channels=channels, batch_norm=True)
    assert _layer_types(d.net) == [
        "Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
        "Flatten", "Linear", "BatchNorm1d", "LeakyReLU", "Linear",
    ]  # fmt: skip
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in weight_layers(d, nn.Conv2d)]
    assert convs == [(channels, 64, (4, 4), (2, 2), (1, 1)), (64, 128, (4, 4), (2, 2), (1, 1))]
    linears = [(fc.in_features, fc.out_features) for fc in weight_layers(d, nn.Linear)]
    assert linears == [(128 * (size // 4) ** 2, 1024), (1024, 1)]
    assert all(m.negative_slope == 0.2 for m in weight_layers(d, nn.LeakyReLU))


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_infogan_generator_is_the_papers(size: int, channels: int) -> None:
    g = infogan.InfoGANGenerator(image_size=size, channels=channels)
    assert _layer_types(g.net) == [
        "Linear", "BatchNorm1d", "LeakyReLU", "Linear", "BatchNorm1d", "LeakyReLU",
        "Unflatten", "ConvTranspose2d", "BatchNorm2d", "LeakyReLU", "ConvTranspose2d",
    ]  # fmt: skip
    linears = [(fc.in_features, fc.out_features) for fc in weight_layers(g, nn.Linear)]
    assert linears == [(64, 1024), (1024, 128 * (size // 4) ** 2)]
    deconvs = weight_layers(g, nn.ConvTranspose2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in deconvs] == [
        (128, 64, (4, 4), (2, 2), (1, 1)),
        (64, channels, (4, 4), (2, 2), (1, 1)),
    ]
    # z ~ U(−1, 1)^64
    assert (g.latent_dim, g.latent_distribution) == (64, "uniform")
    z = g.sample_latent(10_000)
    assert z.shape == (10_000, 64) and z.min() >= -1.0 and z.max() <= 1.0 and z.min() < -0.99 and z.max() > 0.99
    # output = 2·sigmoid(last deconv) − 1
    z = g.sample_latent(BATCH)
    with torch.no_grad():
        assert torch.allclose(g(z), 2.0 * torch.sigmoid(g.net(z)) - 1.0)


def test_infogan_batch_norm_in_discriminator_is_switchable_and_uses_tf_settings() -> None:
    with_bn = infogan.InfoGANDiscriminator(batch_norm=True)
    without_bn = infogan.InfoGANDiscriminator(batch_norm=False)
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d)
    assert len(weight_layers(with_bn, norm_types)) == 2
    assert weight_layers(without_bn, norm_types) == []
    generator_norms = weight_layers(infogan.InfoGANGenerator(), norm_types)
    assert len(generator_norms) == 3  # G always has BN
    for norm in weight_layers(with_bn, norm_types) + generator_norms:
        assert (norm.momentum, norm.eps) == (0.001, 1e-3)  # TF decay 0.999, epsilon 0.001


def test_infogan_init_statistics() -> None:
    torch.manual_seed(0)
    g = infogan.InfoGANGenerator(image_size=28, channels=1)
    d = infogan.InfoGANDiscriminator(image_size=28, channels=1)
    # Forward convolutions (D): truncated normal, |w| ≤ 2σ = 0.04.
    for conv in weight_layers(d, nn.Conv2d):
        assert conv.weight.abs().max() <= 0.04
        assert conv.weight.std().item() == pytest.approx(0.02 * TRUNCATED_STD_RATIO, rel=0.05)
        assert conv.weight.mean().abs() < 0.002
    # Linear and transposed convolution layers: plain N(0, 0.02), so the big ones have values beyond 2σ.
    for layer in weight_layers(g, (nn.Linear, nn.ConvTranspose2d)) + weight_layers(d, nn.Linear):
        if layer.weight.numel() >= 4096:
            assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05)
            assert layer.weight.abs().max() > 0.05
    for layer in weight_layers(g, (nn.Linear, nn.ConvTranspose2d)) + weight_layers(d, (nn.Linear, nn.Conv2d)):
        assert torch.count_nonzero(layer.bias) == 0
    for norm in weight_layers(g, nn.BatchNorm1d):
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


def test_dcgan_init_is_normal_002() -> None:
    torch.manual_seed(0)
    g, d = build("dcgan", 64, 3)
    for layer in weight_layers(g, nn.ConvTranspose2d) + weight_layers(d, nn.Conv2d):
        if layer.weight.numel() >= 4096:
            assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05)


# --------------------------------------------------------------------------------------------- spectral norm


@pytest.mark.parametrize(("model", "size"), [("dcgan", 32), ("resnet", 32)])
def test_spectral_norm_flag_parametrizes_every_discriminator_layer(model: str, size: int) -> None:
    torch.manual_seed(0)
    _, plain = build(model, size, 3, spectral_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())

    _, normed = build(model, size, 3, spectral_norm=True)
    layers = weight_layers(normed, (nn.Conv2d, nn.Linear))
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    normed(torch.rand(BATCH, 3, size, size) * 2 - 1)  # one power iteration per training forward
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_resnet_discriminator_has_spectral_norm_by_default() -> None:
    d = resnet.ResNetDiscriminator()
    assert all(parametrize.is_parametrized(m, "weight") for m in weight_layers(d, (nn.Conv2d, nn.Linear)))


# -------------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(("model", "size", "channels"), [("infogan", 28, 1), ("dcgan", 32, 3), ("resnet", 32, 3)])
def test_model_config_instantiates(make_config, model: str, size: int, channels: int) -> None:
    cfg = make_config(f"model={model}", f"+dataset.image_size={size}", f"+dataset.channels={channels}")
    assert cfg.model.name == model
    g, d = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    assert isinstance(g, Generator)
    with torch.no_grad():
        assert d(g(g.sample_latent(2))).shape == (2,)
    assert g(g.sample_latent(2)).shape == (2, channels, size, size)


def test_infogan_config_is_the_papers_default(make_config) -> None:
    cfg = make_config("model=infogan", "+dataset.image_size=28", "+dataset.channels=1")
    assert cfg.model.generator.latent_dim == 64 and cfg.model.generator.latent_distribution == "uniform"
    assert cfg.model.discriminator.batch_norm is True
    cfg = make_config(
        "model=infogan", "+dataset.image_size=28", "+dataset.channels=1", "model.discriminator.batch_norm=false"
    )
    d = instantiate(cfg.model.discriminator)
    assert weight_layers(d, (nn.BatchNorm1d, nn.BatchNorm2d)) == []


# Image data set configs (those with an image_size), picked up as they are added to conf/dataset/.
IMAGE_DATASETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "dataset").glob("*.yaml") if "image_size" in p.read_text())


@pytest.mark.skipif(not IMAGE_DATASETS, reason="no image data set config in conf/dataset yet")
@pytest.mark.parametrize("model", sorted(NETS))
@pytest.mark.parametrize("dataset", IMAGE_DATASETS or ["none"])
def test_model_composes_with_image_dataset(make_config, dataset: str, model: str) -> None:
    """The dataset's image_size and channels reach the networks; sizes a model lacks fail with the supported list.

    A data set config that does not compose at all is tests/test_config.py's finding, not this test's: skipped here.
    """
    try:
        cfg = make_config(f"dataset={dataset}", f"model={model}")
    except ConfigCompositionException as error:
        pytest.skip(f"dataset={dataset} does not compose: {error}")
    assert cfg.model.name == model  # the command line wins over the data set's default model
    size, channels = cfg.dataset.image_size, cfg.dataset.channels
    if size not in SUPPORTED[model]:
        with pytest.raises((ValueError, InstantiationException), match="supports image_size"):
            instantiate(cfg.model.generator)
        return
    g = instantiate(cfg.model.generator)
    assert g(g.sample_latent(2)).shape == (2, channels, size, size)
    assert instantiate(cfg.model.discriminator)(torch.zeros(2, channels, size, size)).shape == (2,)


# ------------------------------------------------------------------------------------------------- training


class RandomImages(pl.LightningDataModule):
    """Uniform noise in [−1, 1] shaped like images: enough to run real optimizer steps through each network."""

    def __init__(self, image_size: int, channels: int, batch_size: int = BATCH, num_images: int = 32) -> None:
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.batch_size = batch_size
        self.num_images = num_images
        self.batches_per_step = 1

    def train_dataloader(self) -> DataLoader:
        images = torch.rand(self.num_images, *self.shape) * 2.0 - 1.0
        return DataLoader(images, batch_size=self.batch_size * self.batches_per_step, shuffle=True, drop_last=True)


LOSSES = {
    "ns": lambda: GANLoss("ns", NonSaturating()),
    "wgan_gp": lambda: GANLoss("wgan_gp", Wasserstein(), GradientPenalty(10.0)),
    "hinge": lambda: GANLoss("hinge", Hinge()),
}


@pytest.mark.parametrize(
    ("model", "size", "channels", "loss", "n_critic", "d_kwargs"),
    [
        ("infogan", 28, 1, "ns", 1, {"batch_norm": True}),
        ("infogan", 32, 3, "wgan_gp", 2, {"batch_norm": False}),
        ("dcgan", 32, 3, "wgan_gp", 2, {"batch_norm": False, "spectral_norm": True}),
        ("resnet", 32, 3, "hinge", 1, {}),
    ],
)
def test_a_few_training_steps(
    model: str, size: int, channels: int, loss: str, n_critic: int, d_kwargs: dict[str, bool]
) -> None:
    torch.manual_seed(0)
    g, d = build(model, size, channels, **d_kwargs)
    before = [p.detach().clone() for p in g.parameters()]
    adam = functools.partial(torch.optim.Adam, lr=1e-4)
    module = GANModule(g, d, LOSSES[loss](), adam, adam, n_critic=n_critic, g_step_budget=2)
    datamodule = RandomImages(size, channels)
    datamodule.batches_per_step = n_critic
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=-1,
        max_steps=50,  # a safety net: the module stops itself after 2 G steps
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    assert (module.g_steps, module.d_steps, module.diverged) == (2, 2 * n_critic, False)
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters(), strict=True))


# ------------------------------------------------------------------------------ the original GAN on small images


def test_original_gan_networks_are_the_classic_fully_connected_ones() -> None:
    torch.manual_seed(0)
    g, d = ImageMLPGenerator(), ImageMLPDiscriminator()
    g_linears = [(fc.in_features, fc.out_features) for fc in weight_layers(g, nn.Linear)]
    d_linears = [(fc.in_features, fc.out_features) for fc in weight_layers(d, nn.Linear)]
    assert g_linears == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert d_linears == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert _layer_types(d.net).count("Dropout") == 3 and all(m.p == 0.3 for m in weight_layers(d, nn.Dropout))
    assert all(m.negative_slope == 0.2 for m in weight_layers(g, nn.LeakyReLU) + weight_layers(d, nn.LeakyReLU))
    z = g.sample_latent(BATCH)
    with torch.no_grad():
        fake = g(torch.cat([z, 1e3 * z]))
        out = d(fake)
    assert fake.shape == (2 * BATCH, 1, 28, 28) and fake.min() >= -1.0 and fake.max() <= 1.0
    assert fake.abs().max() > 0.999  # tanh saturates on large latents: the output map is tanh, onto the data's range
    assert out.shape == (2 * BATCH,) and torch.isfinite(out).all()
