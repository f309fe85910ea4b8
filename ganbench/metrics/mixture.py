"""Mode coverage metrics of VEEGAN / PacGAN for 2-D Gaussian mixtures (definitions: docs/mixtures.md)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.aggregation import CatMetric

from ganbench.data.mixtures import GaussianMixture, MixtureDataModule


def mixture_metrics(samples: Tensor, mixture: GaussianMixture) -> dict[str, float]:
    """Modes captured, share of high-quality samples and reverse KL of the high-quality samples to uniform.

    A sample is high quality when it lies within 3σ of its nearest mean. Reverse KL is KL(p̂ ‖ uniform) with p̂ the
    distribution of the high-quality samples over the modes; it is NaN when there is no high-quality sample.
    Non-finite samples (a diverged generator) count as low quality.
    """
    samples = samples.detach().to(torch.float64).cpu()
    means = mixture.means.to(torch.float64)
    distances = torch.cdist(samples.nan_to_num(nan=math.inf), means)
    nearest_distance, nearest_mode = distances.min(dim=1)
    high_quality = torch.isfinite(nearest_distance) & (nearest_distance < 3 * mixture.std)
    counts = torch.bincount(nearest_mode[high_quality], minlength=mixture.num_modes).to(torch.float64)
    num_high_quality = counts.sum().item()
    if num_high_quality > 0:
        p = counts[counts > 0] / num_high_quality
        reverse_kl = (p * (p * mixture.num_modes).log()).sum().item()
    else:
        reverse_kl = math.nan
    return {
        "modes": float((counts > 0).sum().item()),
        "high_quality": num_high_quality / samples.shape[0],
        "reverse_kl": reverse_kl,
    }


class MixtureScorer:
    """The mixture protocol's scorer. Samples are gathered in a torchmetrics ``CatMetric``, so under DDP the
    metrics are computed over the samples of all ranks."""

    def __init__(self) -> None:
        self.samples = CatMetric(nan_strategy="disable")
        self.mixture: GaussianMixture | None = None

    def setup(self, datamodule: MixtureDataModule, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """Every rank scores its own samples: the CatMetric gathers them, so rank and world size play no part."""
        self.mixture = datamodule.mixture
        self.samples.to(device)

    def reset(self) -> None:
        self.samples.reset()

    def update(self, fake: Tensor) -> None:
        self.samples.update(fake)

    def compute(self, generator: nn.Module) -> dict[str, float]:
        if self.mixture is None:
            raise RuntimeError("MixtureScorer.setup(datamodule) must run before compute()")
        return mixture_metrics(self.samples.compute(), self.mixture)

    def describe(self) -> dict[str, Any]:
        mixture = self.mixture
        return {
            "metrics": "mixture",
            "num_modes": mixture.num_modes if mixture else None,
            "std": getattr(mixture, "std", None),
        }
