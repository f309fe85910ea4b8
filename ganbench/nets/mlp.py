"""Fully connected networks for low-dimensional data such as the 2-D Gaussian mixtures."""

from __future__ import annotations

from torch import Tensor, nn

from ganbench.nets.base import Generator, LatentDistribution
from ganbench.nets.layers import LEAK


def _mlp(
    in_dim: int, hidden_dim: int, num_hidden: int, out_dim: int, batch_norm: bool, activation: nn.Module
) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(num_hidden):
        layers.append(nn.Linear(width, hidden_dim))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(activation)
        width = hidden_dim
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
    ) -> None:
        super().__init__(latent_dim, latent_distribution)
        self.net = _mlp(latent_dim, hidden_dim, num_hidden, data_dim, batch_norm, nn.ReLU())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x → [Linear → LeakyReLU(0.2)] × num_hidden → Linear(1): one raw logit / critic value per example."""

    def __init__(self, data_dim: int = 2, hidden_dim: int = 200, num_hidden: int = 3, batch_norm: bool = False) -> None:
        super().__init__()
        self.net = _mlp(data_dim, hidden_dim, num_hidden, 1, batch_norm, nn.LeakyReLU(LEAK))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
