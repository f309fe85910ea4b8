"""Fully connected networks: for low-dimensional data such as the 2-D Gaussian mixtures, and the original GAN's
networks for small images (Goodfellow et al. 2014). With ``num_classes`` they are class-conditional as in CGAN (Mirza &
Osindero 2014): the one-hot label joins G's latent and D's (flattened) input (``ganbench.nets.conditioning``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from ganbench.nets.base import Generator, LatentDistribution
from ganbench.nets.conditioning import input_width, with_one_hot
from ganbench.nets.layers import LEAK


def _mlp(
    in_dim: int,
    widths: Sequence[int],
    out_dim: int,
    batch_norm: bool,
    activation: nn.Module,
    dropout: float = 0.0,
) -> nn.Sequential:
    """[Linear → (BatchNorm) → activation → (Dropout)] for each hidden width, then Linear(out_dim)."""
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in widths:
        layers.append(nn.Linear(width, hidden))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(activation)
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(Generator):
    """z → [Linear → ReLU] × num_hidden → Linear(data_dim), unbounded output (PacGAN's 2-D generator)."""

    def __init__(
        self,
        data_dim: int = 2,
        latent_dim: int = 2,
        hidden_dim: int = 400,
        num_hidden: int = 3,
        batch_norm: bool = False,
        latent_distribution: LatentDistribution = "normal",
        num_classes: int | None = None,
    ) -> None:
        super().__init__(latent_dim, latent_distribution, num_classes)
        width = input_width(latent_dim, num_classes)
        self.net = _mlp(width, [hidden_dim] * num_hidden, data_dim, batch_norm, nn.ReLU())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_one_hot(z, labels, self.num_classes))


class MLPDiscriminator(nn.Module):
    """x → [Linear → LeakyReLU(0.2)] × num_hidden → Linear(1): one raw logit / critic value per example."""

    def __init__(
        self,
        data_dim: int = 2,
        hidden_dim: int = 200,
        num_hidden: int = 3,
        batch_norm: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        width = input_width(data_dim, num_classes)
        self.net = _mlp(width, [hidden_dim] * num_hidden, 1, batch_norm, nn.LeakyReLU(LEAK))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_one_hot(x, labels, self.num_classes)).squeeze(1)


class ImageMLPGenerator(Generator):
    """The original GAN's generator for small images: z → [Linear → LeakyReLU(0.2)] per width → Linear(C·H·W) →
    tanh, reshaped to (C, H, W) in [−1, 1], the data's range."""

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        latent_dim: int = 100,
        widths: Sequence[int] = (256, 512, 1024),
        latent_distribution: LatentDistribution = "normal",
        num_classes: int | None = None,
    ) -> None:
        super().__init__(latent_dim, latent_distribution, num_classes)
        self.image_shape = (channels, image_size, image_size)
        width = input_width(latent_dim, num_classes)
        self.net = _mlp(width, widths, math.prod(self.image_shape), False, nn.LeakyReLU(LEAK))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_one_hot(z, labels, self.num_classes)).tanh().view(z.shape[0], *self.image_shape)


class ImageMLPDiscriminator(nn.Module):
    """The original GAN's discriminator for small images: flattened x → [Linear → LeakyReLU(0.2) → Dropout] per
    width → Linear(1), one raw logit per example (dropout as in Goodfellow et al.'s maxout D and PyTorch's example)."""

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        widths: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.3,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        width = input_width(channels * image_size * image_size, num_classes)
        self.net = _mlp(width, widths, 1, False, nn.LeakyReLU(LEAK), dropout)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_one_hot(x.flatten(start_dim=1), labels, self.num_classes)).squeeze(1)
