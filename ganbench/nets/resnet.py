"""SNGAN's ResNet G and D for 32×32 images (Miyato et al. 2018, the CIFAR-10 architecture of their appendix).

G: z(128) ~ N(0, I) → fc 4·4·256 → 3 up-blocks (256 ch) → BN → ReLU → conv3 c → tanh.
D: down-block 128 → down-block 128 → block 128 → block 128 → ReLU → global sum pooling → fc 1 (raw output).
Init as in the authors' Chainer code: Glorot-uniform, gain √2 on the residual convolutions, 1 elsewhere; zero biases.
Class-conditional with ``num_classes`` (Miyato & Koyama 2018): conditional BN in G's blocks; D adds the projection
⟨embed(y), φ(x)⟩ of the pooled features φ(x) that its fc reads.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganbench.nets.base import Generator, LatentDistribution
from ganbench.nets.conditioning import ClassConditional, LabelledSequential, Projection, batch_norm_2d
from ganbench.nets.layers import apply_spectral_norm, check_image_size

SUPPORTED_SIZES = (32,)
BOTTOM = 4  # G's first feature map is 4×4; 3 up-blocks reach 32×32
RESIDUAL_GAIN = math.sqrt(2.0)

Layer = nn.Linear | nn.Conv2d


def _glorot(layer: Layer, gain: float = 1.0) -> Layer:
    nn.init.xavier_uniform_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def _conv(in_ch: int, out_ch: int, kernel: int, gain: float = 1.0) -> nn.Conv2d:
    """Stride-1 convolution that keeps the spatial size."""
    return _glorot(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2), gain)


class GeneratorBlock(ClassConditional):
    """BN → ReLU → up×2 → conv3 → BN → ReLU → conv3, added to an up×2 → conv1 shortcut (nearest upsampling); the BNs
    are conditional on the label with ``num_classes``."""

    def __init__(self, in_ch: int, out_ch: int, num_classes: int | None = None) -> None:
        super().__init__()
        self.residual = LabelledSequential(
            batch_norm_2d(in_ch, num_classes),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(in_ch, out_ch, 3, RESIDUAL_GAIN),
            batch_norm_2d(out_ch, num_classes),
            nn.ReLU(),
            _conv(out_ch, out_ch, 3, RESIDUAL_GAIN),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(in_ch, out_ch, 1))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.residual(x, labels) + self.shortcut(x)


class DiscriminatorBlock(nn.Module):
    """[ReLU] → conv3 → ReLU → conv3 → [avg-pool 2], added to a shortcut that is conv1 → [avg-pool] when the shape
    changes and the identity otherwise. The first block has no leading ReLU: its input is the image (SNGAN's
    "optimized" block; its pool-then-conv1 shortcut equals conv1-then-pool, both being linear)."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, preactivation: bool = True) -> None:
        super().__init__()
        residual: list[nn.Module] = [nn.ReLU()] if preactivation else []
        residual += [_conv(in_ch, out_ch, 3, RESIDUAL_GAIN), nn.ReLU(), _conv(out_ch, out_ch, 3, RESIDUAL_GAIN)]
        shortcut: list[nn.Module] = [_conv(in_ch, out_ch, 1)] if in_ch != out_ch or downsample else []
        if downsample:
            residual.append(nn.AvgPool2d(2))
            shortcut.append(nn.AvgPool2d(2))
        self.residual = nn.Sequential(*residual)
        self.shortcut = nn.Sequential(*shortcut)  # empty: identity

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(Generator):
    """SNGAN's CIFAR generator: 3 up-blocks of ``width`` channels from a 4×4 map; tanh output in [−1, 1]. With
    ``num_classes`` every BN is conditional on the label."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        latent_dim: int = 128,
        width: int = 256,
        latent_distribution: LatentDistribution = "normal",
        num_classes: int | None = None,
    ) -> None:
        super().__init__(latent_dim, latent_distribution, num_classes)
        check_image_size("resnet", image_size, SUPPORTED_SIZES)
        self.net = LabelledSequential(
            _glorot(nn.Linear(latent_dim, width * BOTTOM * BOTTOM)),
            nn.Unflatten(1, (width, BOTTOM, BOTTOM)),
            *(GeneratorBlock(width, width, num_classes) for _ in range(3)),
            nn.BatchNorm2d(width),  # plain, as in SNGAN's projection code and BigGAN
            nn.ReLU(),
            _conv(width, channels, 3),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z, labels)


class ResNetDiscriminator(nn.Module):
    """SNGAN's CIFAR discriminator; ``spectral_norm`` (default on, as in SNGAN) normalises every conv and the fc, and
    the projection's embedding. With ``num_classes``, SNGAN's projection discriminator."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: int = 128,
        spectral_norm: bool = True,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_image_size("resnet", image_size, SUPPORTED_SIZES)
        self.features = nn.Sequential(
            DiscriminatorBlock(channels, width, downsample=True, preactivation=False),
            DiscriminatorBlock(width, width, downsample=True),
            DiscriminatorBlock(width, width, downsample=False),
            DiscriminatorBlock(width, width, downsample=False),
            nn.ReLU(),
        )
        self.head = _glorot(nn.Linear(width, 1))
        if spectral_norm:
            apply_spectral_norm(self)
        # Built last, so that the unconditional layers draw the same random numbers as in an unconditional D.
        self.num_classes = num_classes
        self.projection = None if num_classes is None else Projection(num_classes, width, spectral_norm)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.features(x).sum(dim=(2, 3))
        out = self.head(features).squeeze(1)
        return out if self.projection is None else out + self.projection(features, labels)
