"""The triangles (convex polygons) data set of Lucic et al. 2018, generated exactly as their published generator.

80,000 grey 28×28 images of one triangle each (definition, quirks and cache: docs/triangles.md). The generator is
vectorised, so the whole set builds in seconds; it is cached on disk after the first build and checked on every load.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganbench.cache import load_or_build
from ganbench.data.images import ImageDataModule
from ganbench.errors import UserError

NUM_IMAGES = 80_000
RASTER = 28  # image side, pixels
SUBPIXELS = 8  # sub-pixel samples per pixel side: a pixel's grey level is the share of its 64 samples outside
SCALE = RASTER * 0.75  # the unit square the vertices are drawn in, scaled to 21 px: the circle's radius is 10.5 px
SEGMENT_DEG = 120.0  # the circle split into 3 equal segments, one vertex in each
MIN_OFFSET_DEG = 10.0  # a vertex angle is at least min_segment_angle / 2 = 10° into its segment ...
SPAN_DEG = 110.0  # ... and at most 110° further (segment − min_segment_angle / 2, as published)
CACHE_VERSION = 1
SPLITS = {"train": (0.0, 0.75), "test": (0.75, 0.875), "holdout": (0.875, 1.0)}  # 60k / 10k / 10k of 80k


def draw_uniforms(num_images: int, seed: int, n_vertices: int = 3) -> np.ndarray:
    """The published generator's random numbers, (num_images, n_vertices + 1): the vertex offsets and the rotation,
    in the order ``np.random.seed(seed)`` then ``rand()`` per value, rows permuted at the end as published (so seed 0
    gives the published set's draws). Other vertex counts than 3 make the near-miss polygons of δ's derivation."""
    rng = np.random.RandomState(seed)
    uniforms = rng.rand(num_images, n_vertices + 1)
    return uniforms[rng.permutation(num_images)]


def polygon_vertices(uniforms: np.ndarray) -> np.ndarray:
    """Vertex coordinates in pixels, (n, k, 2) for draws (n, k + 1), the float operations in the published order.

    Coordinate 0 indexes image rows. Vertex i sits at angle i·s + 10° + U·(s − 10°), s = 360° / k (for triangles
    i·120° + 10° + U·110°), on the circle of radius 0.5 centred at (0.5, 0.5); the rotation angle is
    ``np.radians(U·2π)`` — a value already in radians converted once more, so at most 2π² / 180 ≈ 0.11 rad (6.3°), a
    quirk we keep; it turns the vertices by −θ about the origin, which the centring then reduces to a turn about the
    circle's centre. Scaled by 21 and moved so the mean of the vertices is at (14, 14).
    """
    n_vertices = uniforms.shape[1] - 1
    segment = 360.0 / n_vertices
    segments = np.arange(n_vertices) * segment + MIN_OFFSET_DEG
    angles = (segments + uniforms[:, :n_vertices] * (segment - MIN_OFFSET_DEG)) * np.pi / 180.0
    unit = (np.stack([np.cos(angles), np.sin(angles)], axis=-1) + 1.0) / 2.0
    theta = np.radians(uniforms[:, n_vertices] * 2 * np.pi)[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    rotated = np.stack([unit[..., 0] * cos + unit[..., 1] * sin, unit[..., 0] * -sin + unit[..., 1] * cos], axis=-1)
    vertices = rotated * SCALE
    return vertices + (RASTER / 2.0 - vertices.mean(axis=1, keepdims=True))


def rasterize(vertices: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Coverage counts (n, 28, 28) uint8: how many of a pixel's 64 sub-pixel samples fall inside the convex polygon
    (n, k, 2) — a triangle of the data set for k = 3.

    The published rasteriser tests the integer points (i, j), 0 ≤ i, j < 224, of the 8×-scaled polygon and box-filters
    with scipy's even-sized ``convolve``, so pixel (p, q) holds the samples i ∈ [8p − 3, 8p + 4], j ∈ [8q − 3, 8q + 4]
    (samples outside the grid count as background). We get the same counts per scanline: on row i the inside samples
    are an interval of j, bounded by the k edges.
    """
    counts = [_rasterize_chunk(vertices[start : start + chunk] * SUBPIXELS) for start in range(0, len(vertices), chunk)]
    return np.concatenate(counts) if counts else np.zeros((0, RASTER, RASTER), np.uint8)


def _rasterize_chunk(vertices: np.ndarray) -> np.ndarray:
    rows = np.arange(-3, SUBPIXELS * RASTER - 3, dtype=np.float64)  # the 224 sample rows pixels 0..27 cover
    a, b = vertices, np.roll(vertices, -1, axis=1)  # edge k runs from vertex k to vertex k + 1
    d = b - a
    orientation = np.sign(d[:, 0, 0] * d[:, 1, 1] - d[:, 0, 1] * d[:, 1, 0])[:, None, None]
    dx, dy = d[..., 0:1] * orientation, d[..., 1:2] * orientation  # (n, k, 1): inside = left of every edge
    # inside of edge k on row i: dx·(j − a_y) ≥ dy·(i − a_x), a bound on j whose side depends on the sign of dx
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = a[..., 1:2] + dy * (rows - a[..., 0:1]) / dx  # (n, k, rows)
    parallel_outside = (dx == 0) & (dy * (rows - a[..., 0:1]) > 0)
    lo = np.where(dx > 0, np.ceil(bound), -np.inf).max(axis=1)
    hi = np.where(dx < 0, np.floor(bound), np.inf).min(axis=1)
    hi = np.where(parallel_outside.any(axis=1) | (rows < 0), -np.inf, hi)  # rows above the grid are background
    lo = np.maximum(lo, 0.0)[..., None]  # (n, rows, 1); samples left of the grid are background
    hi = hi[..., None]
    first = np.arange(RASTER) * SUBPIXELS - 3.0
    per_row = np.clip(np.minimum(hi, first + SUBPIXELS - 1) - np.maximum(lo, first) + 1, 0, SUBPIXELS)
    return per_row.reshape(len(vertices), RASTER, SUBPIXELS, RASTER).sum(axis=2).astype(np.uint8)


def coverage_to_images(coverage: Tensor) -> Tensor:
    """Coverage counts → grey images in [0, 1]: the triangle dark (0) on a light background (1)."""
    return 1.0 - coverage.float() / SUBPIXELS**2


def generate(num_images: int = NUM_IMAGES, seed: int = 0) -> dict[str, np.ndarray]:
    """The data set as arrays: ``coverage`` (n, 28, 28) uint8 and the generator's ``uniforms`` (n, 4)."""
    uniforms = draw_uniforms(num_images, seed)
    return {"coverage": rasterize(polygon_vertices(uniforms)), "uniforms": uniforms}


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _metadata(arrays: dict[str, np.ndarray], num_images: int, seed: int) -> dict[str, object]:
    return {
        "version": CACHE_VERSION,
        "num_images": num_images,
        "seed": seed,
        "shapes": {name: list(array.shape) for name, array in sorted(arrays.items())},
        "sha256": _checksum(arrays),
    }


def _read_cache(path: Path, num_images: int, seed: int) -> dict[str, np.ndarray]:
    """The cached arrays; raises ValueError (or the reader's own error) when the file is partial or not ours."""
    if not zipfile.is_zipfile(path):  # else np.load takes garbage for a pickle and suggests allow_pickle=True
        raise ValueError("not an .npz archive: truncated or overwritten")
    with np.load(path, allow_pickle=False) as archive:
        stored = json.loads(str(archive["metadata"]))
        arrays = {name: archive[name] for name in ("coverage", "uniforms")}
    if stored != _metadata(arrays, num_images, seed):
        raise ValueError(f"metadata or checksum mismatch: {stored}")
    return arrays


def _write_cache(arrays: dict[str, np.ndarray], path: Path, num_images: int, seed: int) -> None:
    metadata = np.array(json.dumps(_metadata(arrays, num_images, seed)))
    with path.open("wb") as file:  # an open file: given a path, savez would append ".npz" to it
        np.savez_compressed(file, metadata=metadata, **arrays)


def load_or_generate(path: Path, num_images: int = NUM_IMAGES, seed: int = 0) -> dict[str, np.ndarray]:
    """The data set from its cache at ``path``, generated (and cached) when the file is missing, partial or corrupt."""
    try:
        return load_or_build(
            path,
            load=partial(_read_cache, num_images=num_images, seed=seed),
            build=partial(generate, num_images, seed),
            save=partial(_write_cache, num_images=num_images, seed=seed),
            what="triangles cache",
        )
    except OSError as error:  # reading errors are rebuilt, so this is the write
        raise UserError(
            f"cannot write the triangles cache {path}: {error}. Set data_root=<a writable folder>."
        ) from error


class TriangleImages(Dataset):
    """A split's images as (1, 28, 28) tensors in [−1, 1], converted from the compact coverage counts on access."""

    def __init__(self, coverage: Tensor) -> None:
        self.coverage = coverage

    def __len__(self) -> int:
        return len(self.coverage)

    def __getitem__(self, index: int) -> Tensor:
        return coverage_to_images(self.coverage[index][None]) * 2.0 - 1.0


class TrianglesDataModule(ImageDataModule):
    """The triangles set with the paper's splits: first 75 % train, next 12.5 % test, last 12.5 % hold-out.

    ``data_seed`` fixes the images (the same for every training seed); ``seed`` only shuffles the training batches.
    The set is built on first use, not at construction, so composing a config costs nothing.
    """

    def __init__(
        self,
        root: str | Path,
        name: str = "triangles",
        data_seed: int = 0,
        num_images: int = NUM_IMAGES,
        image_size: int = RASTER,
        channels: int = 1,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        if (image_size, channels) != (RASTER, 1):
            raise UserError(
                f"triangles are 28×28 grey images: set dataset.image_size=28 dataset.channels=1 (got "
                f"{image_size}, {channels})"
            )
        if num_images < 8:
            raise UserError(f"dataset.num_images={num_images} is too small: every split needs an image (≥ 8)")
        super().__init__(name, image_size, channels, batch_size, num_workers, seed)
        self.root = Path(root)
        self.data_seed = data_seed
        self.num_images = num_images
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def cache_path(self) -> Path:
        size = "" if self.num_images == NUM_IMAGES else f"-n{self.num_images}"
        return self.root / "triangles" / f"triangles-seed{self.data_seed}{size}-v{CACHE_VERSION}.npz"

    def prepare_data(self) -> None:
        self.arrays()

    def arrays(self) -> dict[str, np.ndarray]:
        """All images' coverage counts and generator draws, loaded (or built) once per process."""
        if self._arrays is None:
            self._arrays = load_or_generate(self.cache_path, self.num_images, self.data_seed)
        return self._arrays

    def split_slice(self, split: str) -> slice:
        if split not in SPLITS:
            raise UserError(f"the triangles set has splits {sorted(SPLITS)}, not {split!r}")
        start, stop = SPLITS[split]
        return slice(round(start * self.num_images), round(stop * self.num_images))

    def split_dataset(self, split: str) -> Dataset:
        return TriangleImages(torch.from_numpy(self.arrays()["coverage"][self.split_slice(split)]))

    def reference_id(self, split: str) -> str:
        size = "" if self.num_images == NUM_IMAGES else f"-n{self.num_images}"
        return f"{super().reference_id(split)}-seed{self.data_seed}{size}"
