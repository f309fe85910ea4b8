"""What every generator shares: it owns its latent distribution, so sampling z never depends on the dataset, and says
how many classes it is conditioned on (None: unconditional)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

LatentDistribution = Literal["normal", "uniform"]


class Generator(nn.Module):
    """Base class: maps z of shape (n, latent_dim), and for a class-conditional G the labels y of shape (n,), to
    samples (``forward(z, labels=None)``); ``sample_latent`` draws that z, ``balanced_labels`` the evaluation's y."""

    def __init__(
        self, latent_dim: int, latent_distribution: LatentDistribution = "normal", num_classes: int | None = None
    ) -> None:
        super().__init__()
        if latent_distribution not in ("normal", "uniform"):
            raise ValueError(f"latent_distribution must be 'normal' or 'uniform', got {latent_distribution!r}")
        self.latent_dim = latent_dim
        self.latent_distribution = latent_distribution
        self.num_classes = num_classes

    def balanced_labels(self, n: int, device: torch.device | None = None) -> Tensor | None:
        """0, 1, …, K−1, 0, 1, … (every class equally often, whatever the slice): the labels the evaluation pairs with
        its fixed latents; None for an unconditional G."""
        if self.num_classes is None:
            return None
        return torch.arange(n, device=device) % self.num_classes

    def sample_latent(
        self, n: int, device: torch.device | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """z ~ N(0, I) or U(−1, 1)^d, optionally from a dedicated RNG (fixed evaluation latents)."""
        device = device or next(self.parameters()).device
        shape = (n, self.latent_dim)
        if self.latent_distribution == "normal":
            return torch.randn(shape, device=device, generator=generator)
        return torch.rand(shape, device=device, generator=generator) * 2.0 - 1.0
