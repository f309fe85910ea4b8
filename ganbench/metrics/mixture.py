"""Mode coverage metrics of VEEGAN / PacGAN for 2-D Gaussian mixtures (definitions: docs/mixtures.md), and for a
class-conditional G the exact conditional metric: does the class-k sample land in mode k (docs/conditional.md)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.aggregation import CatMetric

from ganbench.data.mixtures import GaussianMixture, MixtureDataModule


def nearest_modes(samples: Tensor, mixture: GaussianMixture) -> tuple[Tensor, Tensor]:
    """Each sample's nearest mode, and whether it is high quality: within 3σ of that mode (finite samples only)."""
    samples = samples.detach().to(torch.float64).cpu()
    distances = torch.cdist(samples.nan_to_num(nan=math.inf), mixture.means.to(torch.float64))
    nearest_distance, nearest_mode = distances.min(dim=1)
    return nearest_mode, torch.isfinite(nearest_distance) & (nearest_distance < 3 * mixture.std)


def class_match(samples: Tensor, labels: Tensor, mixture: GaussianMixture) -> dict[str, float]:
    """The conditional metric of a mixture whose classes are its modes: ``class_match/<k>`` is the share of the
    samples generated for class k that are high-quality samples of mode k, ``class_match`` its mean over the classes
    (each class weighted alike; a class with no sample counts as NaN and is left out of the mean)."""
    nearest_mode, high_quality = nearest_modes(samples, mixture)
    labels = labels.to(torch.long).cpu()
    hits = (high_quality & (nearest_mode == labels)).to(torch.float64)
    totals = torch.bincount(labels, minlength=mixture.num_modes).to(torch.float64)
    shares = torch.bincount(labels, weights=hits, minlength=mixture.num_modes) / totals
    per_class = {f"class_match/{k}": share for k, share in enumerate(shares.tolist())}
    return {"class_match": shares.nanmean().item(), **per_class}


def mixture_metrics(samples: Tensor, mixture: GaussianMixture) -> dict[str, float]:
    """Modes captured, share of high-quality samples and reverse KL of the high-quality samples to uniform.

    A sample is high quality when it lies within 3σ of its nearest mean. Reverse KL is KL(p̂ ‖ uniform) with p̂ the
    distribution of the high-quality samples over the modes; it is NaN when there is no high-quality sample.
    Non-finite samples (a diverged generator) count as low quality.
    """
    nearest_mode, high_quality = nearest_modes(samples, mixture)
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
    """The mixture protocol's scorer. Samples (and a conditional G's labels) are gathered in torchmetrics
    ``CatMetric`` states, so under DDP the metrics are computed over the samples of all ranks."""

    def __init__(self) -> None:
        self.samples = CatMetric(nan_strategy="disable")
        self.labels = CatMetric(nan_strategy="disable")
        self.conditional = False
        self.mixture: GaussianMixture | None = None

    def setup(self, datamodule: MixtureDataModule, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """Every rank scores its own samples: the CatMetric gathers them, so rank and world size play no part."""
        self.mixture = datamodule.mixture
        self.samples.to(device)
        self.labels.to(device)

    def reset(self) -> None:
        self.samples.reset()
        self.labels.reset()

    def update(self, fake: Tensor, labels: Tensor | None = None) -> None:
        self.samples.update(fake)
        self.conditional = labels is not None
        if labels is not None:
            self.labels.update(labels.to(fake.dtype))

    def compute(self, generator: nn.Module) -> dict[str, float]:
        if self.mixture is None:
            raise RuntimeError("MixtureScorer.setup(datamodule) must run before compute()")
        samples = self.samples.compute()
        metrics = mixture_metrics(samples, self.mixture)
        if self.conditional:
            metrics |= class_match(samples, self.labels.compute(), self.mixture)
        return metrics

    def describe(self) -> dict[str, Any]:
        mixture = self.mixture
        return {
            "metrics": "mixture",
            "num_modes": mixture.num_modes if mixture else None,
            "std": getattr(mixture, "std", None),
        }
