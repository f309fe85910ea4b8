"""BEGAN's discriminator (Berthelot et al. 2017): an autoencoder, behind ganbench's one seam for D.

Every D in ganbench maps a batch to one score per example, higher meaning "more real" (the losses, the D-accuracy
diagnostic ``pairwise_auc`` and the logged ``train/d_real`` / ``train/d_fake`` rely on it). An autoencoder D keeps
that seam by returning the **realness score −L(x)**, L(x) = mean |x − Dec(Enc(x))| over the example's elements (its L1
reconstruction error): BEGAN's D reconstructs real data well and generated data badly, so −L is high on real data.
``BoundaryEquilibrium`` (``ganbench.losses``) turns the scores back into errors, L = −score.

Two architectures, one per kind of data, chosen by ``began_discriminator`` from the model's name (conf/loss/began.yaml):

- 2-D points (``model=mlp``): ``MLPAutoencoder``, [Linear → LReLU] × 2 → h → [Linear → LReLU] × 2 → 2, about the
  parameter count of the MLP D (81k) at width 200.
- 28 / 32 / 64 px images (``model=infogan`` / ``infogan_cpu``): ``InfoGANAutoencoder``, compare_gan v1's BEGAN
  discriminator layer by layer (``BEGAN.py``, the code of Lucic et al.): InfoGAN D's two convolutions down to a
  bottleneck of h = 64, InfoGAN G's fc and two deconvolutions back to the image.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from ganbench.errors import UserError
from ganbench.nets.infogan import BN_EPS, BN_MOMENTUM, CHANNELS, SUPPORTED_SIZES
from ganbench.nets.layers import LEAK, batch_norm_or_identity, check_image_size, normal_init_

IMAGE_EMBEDDING = 64  # h: compare_gan v1's BEGAN bottleneck (d_fc6), also the h = 64 of Berthelot et al.
POINT_EMBEDDING = 8  # h for 2-D points: wider than the data, so the bottleneck is not what makes D discriminate
POINT_HIDDEN = 200  # the MLP D's width (conf/model/mlp.yaml)
POINT_LAYERS = 2  # hidden layers on each side of the bottleneck


class AutoencoderDiscriminator(nn.Module):
    """D(x) = −L(x) = −mean |x − decoder(encoder(x))| per example: a realness score, higher = better reconstructed."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        return -(x - self.reconstruct(x)).abs().flatten(start_dim=1).mean(dim=1)


def _mlp_layers(widths: list[int], batch_norm: bool) -> list[nn.Module]:
    """[Linear → [BN] → LReLU] between consecutive widths."""
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(widths):
        layers += [nn.Linear(width_in, width_out), batch_norm_or_identity(batch_norm, width_out, dims=1)]
        layers.append(nn.LeakyReLU(LEAK))
    return layers


class MLPAutoencoder(AutoencoderDiscriminator):
    """x → [Linear → LReLU] × num_hidden → Linear(h) → [Linear → LReLU] × num_hidden → Linear(data_dim), unbounded
    like the MLP G's output, PyTorch's default init like the MLP D. ``batch_norm`` adds BN after every hidden layer
    (off by default, as in BEGAN's setting)."""

    def __init__(
        self,
        data_dim: int = 2,
        hidden_dim: int = POINT_HIDDEN,
        num_hidden: int = POINT_LAYERS,
        embedding_dim: int = POINT_EMBEDDING,
        batch_norm: bool = False,
    ) -> None:
        down = [data_dim] + [hidden_dim] * num_hidden
        up = [embedding_dim] + [hidden_dim] * num_hidden
        encoder = nn.Sequential(*_mlp_layers(down, batch_norm), nn.Linear(down[-1], embedding_dim))
        decoder = nn.Sequential(*_mlp_layers(up, batch_norm), nn.Linear(up[-1], data_dim))
        super().__init__(encoder, decoder)


class _TwoSigmoidMinusOne(nn.Module):
    """2·σ(x) − 1: the InfoGAN G's output map (``ganbench.nets.infogan``), the paper's sigmoid for data in [−1, 1]."""

    def forward(self, x: Tensor) -> Tensor:
        return 2.0 * torch.sigmoid(x) - 1.0


class InfoGANAutoencoder(AutoencoderDiscriminator):
    """compare_gan v1's BEGAN D, with the InfoGAN networks' init, BN settings and output map:

    encoder: conv 64 k4 s2 → LReLU → conv 128 k4 s2 → fc h → [BN] → LReLU (the code),
    decoder: fc 128·(s/4)² → [BN] → LReLU → deconv 64 k4 s2 → [BN] → LReLU → deconv c k4 s2 → 2σ − 1.

    As in v1, no nonlinearity follows the second convolution (it and the fc form one linear map to the code), and the
    decoder has no fc 1024 (1.07M parameters at 28 px against the InfoGAN D's 6.56M). ``batch_norm`` is the
    paper's "BN in D" (off in its BEGAN setting); ``base_channels`` follows the model's (32 for ``infogan_cpu``).
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        batch_norm: bool = False,
        base_channels: int = CHANNELS,
        embedding_dim: int = IMAGE_EMBEDDING,
    ) -> None:
        check_image_size("began's autoencoder", image_size, SUPPORTED_SIZES)
        base = image_size // 4
        wide = 2 * base_channels

        def norm(features: int, dims: int) -> nn.Module:
            return batch_norm_or_identity(batch_norm, features, dims, eps=BN_EPS, momentum=BN_MOMENTUM)

        encoder = nn.Sequential(
            nn.Conv2d(channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(base_channels, wide, kernel_size=4, stride=2, padding=1),
            nn.Flatten(),
            nn.Linear(wide * base * base, embedding_dim),
            norm(embedding_dim, dims=1),
            nn.LeakyReLU(LEAK),
        )
        decoder = nn.Sequential(
            nn.Linear(embedding_dim, wide * base * base),
            norm(wide * base * base, dims=1),
            nn.LeakyReLU(LEAK),
            nn.Unflatten(1, (wide, base, base)),
            nn.ConvTranspose2d(wide, base_channels, kernel_size=4, stride=2, padding=1),
            norm(base_channels, dims=2),
            nn.LeakyReLU(LEAK),
            nn.ConvTranspose2d(base_channels, channels, kernel_size=4, stride=2, padding=1),
            _TwoSigmoidMinusOne(),
        )
        super().__init__(encoder, decoder)
        normal_init_(self, truncate_conv=True)


POINT_MODELS = ("mlp",)
IMAGE_MODELS = ("infogan", "infogan_cpu")


class UnsupportedModel(UserError, ValueError):
    """A model family BEGAN has no autoencoder D for."""


def began_discriminator(
    model: str,
    data_dim: int | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    base_channels: int | None = None,
    embedding_dim: int | None = None,
    batch_norm: bool = False,
) -> AutoencoderDiscriminator:
    """BEGAN's autoencoder D for the networks of ``model`` (``model.name``): the MLP autoencoder next to the MLP G, the
    InfoGAN-style one next to the InfoGAN G. ``embedding_dim`` None is the architecture's h (8 for points, 64 for
    images); the arguments of the other architecture are ignored (conf/model/discriminator/began.yaml passes both)."""
    if model in POINT_MODELS:
        return MLPAutoencoder(data_dim or 2, embedding_dim=embedding_dim or POINT_EMBEDDING, batch_norm=batch_norm)
    if model in IMAGE_MODELS:
        if image_size is None or channels is None:
            raise UnsupportedModel(f"model={model} with BEGAN needs an image dataset (dataset.image_size, channels)")
        return InfoGANAutoencoder(
            image_size, channels, batch_norm, base_channels or CHANNELS, embedding_dim or IMAGE_EMBEDDING
        )
    supported = ", ".join(POINT_MODELS + IMAGE_MODELS)
    raise UnsupportedModel(
        f"loss=began has an autoencoder discriminator for model={{{supported}}}, not for model={model}: "
        "use model=infogan (or infogan_cpu) on images"
    )
