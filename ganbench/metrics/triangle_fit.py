"""Distance to the triangle manifold: Levenberg–Marquardt on the data generator's own four random numbers.

Parametrised by the generator's draws, the fit can only produce triangles the data set contains (never a degenerate,
blank one); it renders them with :mod:`ganbench.metrics.triangle_render`. Precision counts the generated samples
this distance puts within δ (:mod:`ganbench.metrics.triangles`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ganbench.data.triangles import SPAN_DEG
from ganbench.metrics.nearest import nearest_indices
from ganbench.metrics.triangle_render import render_uniforms

# d(angle)/d(rotation draw) ÷ d(angle)/d(vertex draw): (2π² / 180) / (110π / 180)
ROTATION_PER_ANGLE = 2 * math.pi / SPAN_DEG


@dataclass
class _Fit:
    """Levenberg–Marquardt state of a batch of fits: the generator's draws, their renders, errors and damping."""

    uniforms: Tensor
    images: Tensor
    error: Tensor
    damping: Tensor

    def take(self, index: Tensor) -> _Fit:
        return _Fit(self.uniforms[index], self.images[index], self.error[index], self.damping[index])


class TriangleManifold:
    """Distance from images to the triangle manifold: Levenberg–Marquardt on the data generator's four draws
    (projected onto [0, 1]^4), from the ``restarts`` nearest of a bank of rendered triangles. Every restart gets
    ``screening`` iterations, then only each image's best goes on to ``iterations`` in all.

    LM needs a few forward renders per iteration (forward differences for the 784 × 4 Jacobian) and converges in a
    handful of them; a gradient step with autograd through the renderer costs ~8 forward renders.
    """

    def __init__(
        self,
        bank_size: int = 8192,
        restarts: int = 4,
        screening: int = 3,
        iterations: int = 8,
        chunk_size: int = 256,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.restarts = restarts
        self.screening = screening
        self.iterations = iterations
        self.chunk_size = chunk_size
        rng = torch.Generator().manual_seed(seed)
        self.bank_uniforms = torch.rand(bank_size, 4, generator=rng).to(device)
        self.bank = torch.cat([render_uniforms(chunk) for chunk in self.bank_uniforms.split(1024)])

    def distance(self, images: Tensor) -> Tensor:
        """L2 distance (n,) of images (n, 28, 28) in [0, 1] to the nearest triangle found."""
        targets = images.flatten(1).to(self.bank)
        return torch.cat([self._distance(chunk) for chunk in targets.split(self.chunk_size)])

    def _distance(self, target: Tensor) -> Tensor:
        restarts = min(self.restarts, len(self.bank))
        uniforms = self.bank_uniforms[nearest_indices(target, self.bank, restarts)].flatten(0, 1)
        images = render_uniforms(uniforms)
        error = ((images - target.repeat_interleave(restarts, dim=0)) ** 2).sum(1)
        fit = _Fit(uniforms, images, error, torch.full_like(error, 1e-2))
        fit = _levenberg_marquardt(fit, target.repeat_interleave(restarts, dim=0), min(self.screening, self.iterations))
        first = torch.arange(len(target), device=target.device) * restarts
        best = first + fit.error.view(len(target), restarts).argmin(dim=1)
        fit = _levenberg_marquardt(fit.take(best), target, max(self.iterations - self.screening, 0))
        return fit.error.sqrt()


def _levenberg_marquardt(fit: _Fit, target: Tensor, iterations: int, step: float = 1e-3) -> _Fit:
    """``iterations`` damped Gauss–Newton steps on ‖render(u) − target‖², u kept in [0, 1]^4; a step is taken only
    when it lowers the error (then the damping falls, else it rises)."""
    eye = torch.eye(3, 4, dtype=fit.uniforms.dtype, device=fit.uniforms.device)
    for _ in range(iterations):
        shifted = render_uniforms((fit.uniforms[:, None] + step * eye).flatten(0, 1)).view(len(target), 3, -1)
        angles = (shifted - fit.images[:, None]) / step  # (m, 3, 784): one column per vertex draw
        # the rotation draw shifts all three angles at once: its column is a fixed combination of the others
        jacobian = torch.cat([angles, -ROTATION_PER_ANGLE * angles.sum(dim=1, keepdim=True)], dim=1)
        normal = jacobian @ jacobian.transpose(1, 2)
        gradient = jacobian @ (fit.images - target)[..., None]
        damped = normal + torch.diag_embed(fit.damping[:, None] * torch.diagonal(normal, dim1=1, dim2=2) + 1e-6)
        uniforms = (fit.uniforms - torch.linalg.solve(damped, gradient)[..., 0]).clamp(0.0, 1.0)
        images = render_uniforms(uniforms)
        error = ((images - target) ** 2).sum(1)
        better = error < fit.error
        fit = _Fit(
            torch.where(better[:, None], uniforms, fit.uniforms),
            torch.where(better[:, None], images, fit.images),
            torch.where(better, error, fit.error),
            torch.where(better, fit.damping / 3, fit.damping * 4),
        )
    return fit
