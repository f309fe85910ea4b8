"""Which BatchNorm statistics the generator uses when it is evaluated: a field of the evaluation protocol.

``running``: the moving averages kept during training (the paper's; with TF's decay 0.999 they lag far behind a fast
changing G). ``standing``: statistics recomputed from fresh latents just before each evaluation (StudioGAN's
"standing statistics"; ``torch.optim.swa_utils.update_bn`` does the recomputation). ``batch``: each evaluation batch's
own statistics (train-mode BN). Standing and batch work on a copy, so training's running averages stay untouched.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from ganbench.nets.base import Generator

BatchNormStatistics = Literal["running", "standing", "batch"]
CHOICES = ("running", "standing", "batch")


class _OnBalancedLabels(nn.Module):
    """G with each batch's balanced labels (``Generator.balanced_labels``), as the one-input model update_bn calls."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z, self.generator.balanced_labels(len(z), z.device))


def _batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [layer for layer in module.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)]


def evaluation_generator(
    generator: Generator,
    statistics: BatchNormStatistics,
    standing_samples: int,
    batch_size: int,
    seed: int,
) -> Generator:
    """``generator`` in eval mode with the chosen BN statistics, in every forward pass of whoever uses it (the scorers,
    G's inversion, the sample grid); a generator without BatchNorm is returned as it is."""
    if statistics not in CHOICES:
        raise ValueError(f"BatchNorm statistics must be one of {', '.join(CHOICES)}, got {statistics!r}")
    if statistics == "running" or not _batch_norms(generator):
        return generator.eval()
    evaluated = copy.deepcopy(generator)
    if statistics == "batch":
        for layer in _batch_norms(evaluated):  # without running statistics, BN normalises by the batch in eval mode too
            layer.track_running_stats = False
            layer.running_mean = layer.running_var = layer.num_batches_tracked = None
        return evaluated.eval()
    device = next(generator.parameters()).device
    latents = generator.sample_latent(standing_samples, torch.device("cpu"), torch.Generator().manual_seed(seed))
    batches = (z.to(device) for z in latents.split(batch_size))
    update_bn(batches, _OnBalancedLabels(evaluated))  # the cumulative average over the batches
    return evaluated.eval()
