"""The InfoGAN-style networks of Lucic et al. 2018, layer by layer as in compare_gan v1 (``abstract_gan.py``).

One architecture for every loss and dataset (28×28×1, 32×32×3, 64×64×3), so that only the loss differs between runs.
Every k4 s2 (de)convolution uses padding 1, which halves / doubles even sizes exactly like TF's "SAME" padding.
With ``num_classes`` both are class-conditional as in CGAN: the one-hot label joins G's latent and D's input image
(one constant channel per class; ``ganbench.nets.conditioning``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganbench.nets.base import Generator, LatentDistribution
from ganbench.nets.conditioning import input_width, with_one_hot
from ganbench.nets.layers import LEAK, batch_norm_or_identity, check_image_size, normal_init_

SUPPORTED_SIZES = (28, 32, 64)
# TF's batch_norm(decay=0.999, epsilon=0.001): PyTorch's momentum is 1 − decay.
BN_MOMENTUM = 0.001
BN_EPS = 1e-3
HIDDEN = 1024  # width of the fully connected hidden layer in G and D
CHANNELS = 64  # channels of the first convolution of D (and the last deconvolution of G); the other has twice as many


def _batch_norm(enabled: bool, features: int, dims: int) -> nn.Module:
    return batch_norm_or_identity(enabled, features, dims, eps=BN_EPS, momentum=BN_MOMENTUM)


class InfoGANGenerator(Generator):
    """z(64) → fc 1024 → BN → LReLU → fc 128·(h/4)·(w/4) → BN → LReLU → deconv 64 → BN → LReLU → deconv c → 2σ − 1.

    The paper ends in a sigmoid for data in [0, 1]; our data are in [−1, 1]. 2·sigmoid − 1 is exactly the paper's
    output mapped by the same affine map that takes the data from [0, 1] to [−1, 1], so every layer, its init and its
    pre-activation scale stay the paper's (tanh(x) = 2·sigmoid(2x) − 1 would double the last layer's slope).
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        latent_dim: int = 64,
        latent_distribution: LatentDistribution = "uniform",
        hidden: int = HIDDEN,
        base_channels: int = CHANNELS,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(latent_dim, latent_distribution, num_classes)
        check_image_size("infogan", image_size, SUPPORTED_SIZES)
        base = image_size // 4
        wide = 2 * base_channels
        self.net = nn.Sequential(
            nn.Linear(input_width(latent_dim, num_classes), hidden),
            _batch_norm(True, hidden, dims=1),
            nn.LeakyReLU(LEAK),
            nn.Linear(hidden, wide * base * base),
            _batch_norm(True, wide * base * base, dims=1),
            nn.LeakyReLU(LEAK),
            nn.Unflatten(1, (wide, base, base)),
            nn.ConvTranspose2d(wide, base_channels, kernel_size=4, stride=2, padding=1),
            _batch_norm(True, base_channels, dims=2),
            nn.LeakyReLU(LEAK),
            nn.ConvTranspose2d(base_channels, channels, kernel_size=4, stride=2, padding=1),
        )
        normal_init_(self, truncate_conv=True)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return 2.0 * torch.sigmoid(self.net(with_one_hot(z, labels, self.num_classes))) - 1.0


class InfoGANDiscriminator(nn.Module):
    """conv 64 → LReLU → conv 128 → [BN] → LReLU → fc 1024 → [BN] → LReLU → fc 1: one raw logit per example.

    ``batch_norm`` is the paper's "BN in D" hyperparameter (on by default, off for WGAN-GP and BEGAN). ``hidden`` and
    ``base_channels`` default to the paper's widths; ``model=infogan_cpu`` narrows both for laptop budgets.
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        batch_norm: bool = True,
        hidden: int = HIDDEN,
        base_channels: int = CHANNELS,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_image_size("infogan", image_size, SUPPORTED_SIZES)
        self.num_classes = num_classes
        base = image_size // 4
        wide = 2 * base_channels
        self.net = nn.Sequential(
            nn.Conv2d(input_width(channels, num_classes), base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(base_channels, wide, kernel_size=4, stride=2, padding=1),
            _batch_norm(batch_norm, wide, dims=2),
            nn.LeakyReLU(LEAK),
            nn.Flatten(),
            nn.Linear(wide * base * base, hidden),
            _batch_norm(batch_norm, hidden, dims=1),
            nn.LeakyReLU(LEAK),
            nn.Linear(hidden, 1),
        )
        normal_init_(self, truncate_conv=True)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_one_hot(x, labels, self.num_classes)).squeeze(1)
