"""Where the triangle metrics' searches start: the nearest candidates of a fixed, pre-rendered bank."""

from __future__ import annotations

from torch import Tensor


def nearest_indices(images: Tensor, bank: Tensor, k: int) -> Tensor:
    """Indices (n, k) of the k bank images (m, d) nearest to each image (n, d) in L2; all m when m < k."""
    d2 = (images * images).sum(1, keepdim=True) - 2 * images @ bank.T + (bank * bank).sum(1)
    return d2.topk(min(k, len(bank)), dim=1, largest=False).indices
