"""Distance to a generator's range: gradient descent on z, for recall on the triangles set (docs/triangles.md).

Recall counts the real test triangles this distance puts within δ (:mod:`ganbench.metrics.triangles`). The search
starts from the nearest of a fixed bank of generated samples (the restarts), batched over targets and restarts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganbench.metrics.nearest import nearest_indices
from ganbench.nets.base import Generator

LATENT_BOX = {"uniform": 1.0, "normal": 3.0}  # inversion keeps z in [−b, b]^d: U(−1, 1)'s support, N(0, 1)'s ±3σ


def generator_distance(
    generator: Generator,
    images: Tensor,
    bank_size: int = 4096,
    restarts: int = 2,
    steps: int = 50,
    lr: float = 0.05,
    chunk_size: int = 250,
    seed: int = 0,
) -> Tensor:
    """L2 distance (n,) of images (n, 28, 28) in [0, 1] to the range of ``generator`` (outputs in [−1, 1]).

    Adam on z from the ``restarts`` nearest of ``bank_size`` fixed latents, z projected onto the latent's box after
    every step; the best distance seen counts. Only z gets gradients: G's parameters and BN statistics are untouched.
    """
    device = next(generator.parameters()).device
    box = LATENT_BOX[generator.latent_distribution]
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        bank_z = generator.sample_latent(bank_size, torch.device("cpu"), torch.Generator().manual_seed(seed))
        bank_z = bank_z.clamp(-box, box).to(device)
        bank = torch.cat([_generated(generator, chunk) for chunk in bank_z.split(512)])
    targets = images.flatten(1).to(bank)
    distances = [
        _invert(generator, target, bank_z[nearest_indices(target, bank, restarts)].flatten(0, 1), box, steps, lr)
        for target in targets.split(chunk_size)
    ]
    generator.train(was_training)
    return torch.cat(distances)


def _generated(generator: Generator, z: Tensor) -> Tensor:
    return ((generator(z).float() + 1.0) / 2.0).clamp(0.0, 1.0).flatten(1)


def _invert(generator: Generator, target: Tensor, z: Tensor, box: float, steps: int, lr: float) -> Tensor:
    """Best distance (n,) over ``steps`` Adam steps on z (n · restarts, latent_dim), restarts of a target adjacent."""
    restarts = len(z) // len(target)
    target = target.repeat_interleave(restarts, dim=0)
    best = torch.full((len(z),), math.inf, device=z.device)
    z = z.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps + 1):
            error = ((_generated(generator, z) - target) ** 2).sum(1)
            best = torch.fmin(best, error.detach())  # NaN outputs (a diverged G) leave it at inf
            # a collapsed G may ignore z entirely: then z gets zero gradients
            (z.grad,) = torch.autograd.grad(error.sum(), z, allow_unused=True, materialize_grads=True)
            optimizer.step()
            with torch.no_grad():
                z.clamp_(-box, box)
    return best.view(-1, restarts).min(dim=1).values.sqrt()
