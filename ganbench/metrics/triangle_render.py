"""A differentiable renderer of the triangles data set: the data generator's draws → vertices → exact-area images.

The manifold fit (:mod:`ganbench.metrics.triangle_fit`) renders candidate triangles with it; it agrees with the
data's 64-sample rasteriser (:mod:`ganbench.data.triangles`) up to that rasteriser's sampling error.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganbench.data.triangles import MIN_OFFSET_DEG, RASTER, SCALE, SEGMENT_DEG, SPAN_DEG

# Pixel p of the data holds the sub-pixel samples 8p − 3 … 8p + 4, i.e. the area [p − 7/16, p + 9/16) in pixel units;
# the sample grid starts at −1/16, so pixel 0 is cut there. Row and column edges of all pixels:
_EDGES = [-1 / 16, *(p + 9 / 16 for p in range(RASTER))]


def vertices_from_uniforms(uniforms: Tensor) -> Tensor:
    """The data generator's vertices (n, 3, 2), in pixels, from its four U(0, 1) draws — differentiable.

    The rotation (published quirk: at most 2π² / 180 rad) turns every vertex by −θ about the circle's centre once the
    centroid is moved to the image centre, so it only shifts the three vertex angles.
    """
    segments = torch.arange(3, dtype=uniforms.dtype, device=uniforms.device) * SEGMENT_DEG + MIN_OFFSET_DEG
    theta = uniforms[:, 3:] * (2 * math.pi * math.pi / 180.0)
    angles = (segments + uniforms[:, :3] * SPAN_DEG) * (math.pi / 180.0) - theta
    vertices = (SCALE / 2) * torch.stack([angles.cos(), angles.sin()], dim=-1)
    return vertices - vertices.mean(dim=1, keepdim=True) + RASTER / 2


def render(vertices: Tensor) -> Tensor:
    """Triangles (n, 3, 2) → images (n, 28, 28) in [0, 1], dark triangle on light ground, each pixel's exact area.

    By Green's theorem the area of the triangle in the quadrant {x ≤ X, y ≤ Y} is a sum over its edges of the edge's
    signed x-extent (up to X) times the mean of relu(Y − y) along it; the pixel areas are differences of this function
    at the 29 × 29 pixel corners. Exact areas differ from the data's 64-sample counts by the sampling error only.
    """
    edges = torch.tensor(_EDGES, dtype=vertices.dtype, device=vertices.device)
    start, end = vertices, vertices.roll(-1, dims=1)
    (ax, ay), (bx, by) = start.unbind(-1), end.unbind(-1)
    step = end - start
    orientation = torch.sign(step[:, 0, 0] * step[:, 1, 1] - step[:, 0, 1] * step[:, 1, 0])[:, None, None]
    signed_extent = torch.minimum(bx[..., None], edges) - torch.minimum(ax[..., None], edges)  # (n, 3, 29)
    x_lo = torch.minimum(ax, bx)[..., None]
    x_hi = torch.maximum(x_lo, torch.minimum(torch.maximum(ax, bx)[..., None], edges))
    dx = bx - ax
    slope = ((by - ay) / torch.where(dx.abs() > 1e-6, dx, torch.full_like(dx, 1e-6)))[..., None]
    y_lo = ay[..., None] + slope * (x_lo - ax[..., None])
    y_hi = ay[..., None] + slope * (x_hi - ax[..., None])
    y_min = torch.minimum(y_lo, y_hi)[..., None]
    y_span = (y_hi - y_lo).abs()[..., None]  # (n, 3, 29, 1)
    # mean of relu(Y − y) for y uniform on [y_min, y_min + span], written to stay finite as span → 0
    above = edges - y_min  # (n, 3, 29, 29)
    ramp = torch.minimum(above.relu(), y_span)
    mean_relu = ramp * ramp / (2 * y_span + 1e-12) + (above - y_span).relu()
    quadrant = ((orientation * signed_extent)[..., None] * mean_relu).sum(dim=1)  # (n, 29, 29)
    area = quadrant[:, 1:, 1:] - quadrant[:, :-1, 1:] - quadrant[:, 1:, :-1] + quadrant[:, :-1, :-1]
    return 1.0 - area


def render_uniforms(uniforms: Tensor) -> Tensor:
    """Images (n, 784) in [0, 1] of the triangles the data generator makes from ``uniforms`` (n, 4)."""
    return render(vertices_from_uniforms(uniforms)).flatten(1)
