"""Triangles protocol helper: choose δ from real triangles and near-miss negatives, time the data build and scoring.

    python scripts/bench_triangles.py delta [--num 2000 --num-positive 10000]  # manifold distances per set; δ
    python scripts/bench_triangles.py speed [--num-fake 1000 --num-real 500]

Both use the data cache under --root (the config's data_root, default ``data``). Figures: docs/triangles.md.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ganbench.data.triangles import (
    RASTER,
    SUBPIXELS,
    TrianglesDataModule,
    coverage_to_images,
    draw_uniforms,
    generate,
    polygon_vertices,
    rasterize,
)
from ganbench.metrics.triangle_fit import TriangleManifold
from ganbench.metrics.triangles import TriangleScorer
from ganbench.nets.infogan import InfoGANGenerator

GRID = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)  # candidate δs the table reports
QUANTILES = (0.01, 0.05, 0.5, 0.95)
NEGATIVE_SHARE = 0.01  # the rule: at most this share of every designated negative set may be precise ...
STEP = 0.05  # ... at the largest δ, rounded down to a multiple of this, that keeps every real triangle precise
ROLES = {"positive": "real (must all be precise)", "negative": "designated negative", "informational": "informational"}


@dataclass(frozen=True)
class ImageSet:
    """Images (n, 28, 28) in [0, 1] and their part in the rule: positive, designated negative or informational."""

    name: str
    role: str
    images: np.ndarray


def polygon_images(num: int, n_vertices: int, seed: int) -> np.ndarray:
    """Convex polygons of the published generator with ``n_vertices`` (same angles, scale, sub-pixels, centring)."""
    coverage = rasterize(polygon_vertices(draw_uniforms(num, seed, n_vertices)))
    return coverage_to_images(torch.from_numpy(coverage)).numpy()


def subpixel_mask(vertices: np.ndarray) -> np.ndarray:
    """The data's 8× sample grid (n, 224, 224), True inside the convex polygons (n, k, 2): pixel p holds the samples
    8p − 3 … 8p + 4; samples at negative coordinates are background (as in ``rasterize``)."""
    coords = np.arange(-3, SUBPIXELS * RASTER - 3, dtype=np.float64)
    start = vertices * SUBPIXELS
    step = np.roll(start, -1, axis=1) - start
    orientation = np.sign(step[:, 0, 0] * step[:, 1, 1] - step[:, 0, 1] * step[:, 1, 0])
    masks = []
    for a, d, sign in zip(start, step, orientation, strict=True):
        cross = d[:, 0] * (coords[None, :, None] - a[:, 1]) - d[:, 1] * (coords[:, None, None] - a[:, 0])
        masks.append((sign * cross >= 0).all(axis=-1))
    inside_grid = coords >= 0
    return np.stack(masks) & inside_grid[:, None] & inside_grid


def box_filter(mask: np.ndarray) -> np.ndarray:
    """Sub-pixel masks (n, 224, 224) → images in [0, 1], a pixel the share of its 64 samples outside (as the data)."""
    counts = mask.reshape(len(mask), RASTER, SUBPIXELS, RASTER, SUBPIXELS).sum(axis=(2, 4))
    return 1.0 - counts / SUBPIXELS**2


def rounded(vertices: np.ndarray, radius: float) -> np.ndarray:
    """Triangles with corners rounded: a morphological opening by a disk of ``radius`` pixels on the 8× grid (erode,
    then dilate, both by distance transform), rasterised as the data."""
    masks = []
    for mask in subpixel_mask(vertices):
        eroded = ndimage.distance_transform_edt(mask) > radius * SUBPIXELS
        masks.append(ndimage.distance_transform_edt(~eroded) <= radius * SUBPIXELS)
    return box_filter(np.stack(masks))


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels, the background continued beyond the border."""
    return ndimage.gaussian_filter(images, (0, sigma, sigma), mode="constant", cval=1.0)


def overlapped(images: np.ndarray) -> np.ndarray:
    """Two triangles in one image: each image's pixelwise minimum (the union of the dark areas) with the previous."""
    return np.minimum(images, np.roll(images, 1, axis=0))


def shifted(images: np.ndarray, pixels: int) -> np.ndarray:
    """Images moved by ``pixels`` down, right, up and left in turn: triangles, but off the data's centring."""
    moved = images.copy()
    for index, (shift, axis) in enumerate([(pixels, 1), (pixels, 2), (-pixels, 1), (-pixels, 2)]):
        moved[index::4] = np.roll(images[index::4], shift, axis=axis)
    return moved


def split_images(datamodule: TrianglesDataModule, split: str, num: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``num`` images of a split in [0, 1] and their triangles' vertices."""
    part = datamodule.split_slice(split)
    coverage = datamodule.arrays()["coverage"][part][:num]
    vertices = polygon_vertices(datamodule.arrays()["uniforms"][part][:num])
    return coverage_to_images(torch.from_numpy(coverage)).numpy(), vertices


def image_sets(datamodule: TrianglesDataModule, num: int, num_positive: int) -> list[ImageSet]:
    """Real hold-out and test triangles, and the near-miss sets, derived from the first ``num`` hold-out triangles.

    Designated negatives are shapes that are no triangle of the data set by a visible margin. Informational: changes
    of the size of the anti-aliasing itself (σ = 0.5 px blur, 1 px rounding), centring errors (a shifted triangle is a
    triangle, not one of the data set's) and far-off images (mean image, noise).
    """
    holdout, vertices = split_images(datamodule, "holdout", num_positive)
    test, _ = split_images(datamodule, "test", num_positive)
    near, near_vertices = holdout[:num], vertices[:num]
    train = datamodule.arrays()["coverage"][datamodule.split_slice("train")]
    mean = 1.0 - train.mean(axis=0, dtype=np.float64)[None] / SUBPIXELS**2
    noise = np.random.default_rng(0).random((num, RASTER, RASTER))
    return [
        ImageSet("hold-out triangles", "positive", holdout),
        ImageSet("test triangles", "positive", test),
        ImageSet("quadrilaterals (published generator, 4 vertices)", "negative", polygon_images(num, 4, seed=1)),
        ImageSet("blurred, σ = 1 px", "negative", blurred(near, 1.0)),
        ImageSet("rounded corners, r = 2 px", "negative", rounded(near_vertices, 2.0)),
        ImageSet("two overlapping triangles", "negative", overlapped(near)),
        ImageSet("uniform grey, levels 0…1", "negative", np.linspace(0, 1, num)[:, None, None] * np.ones_like(near)),
        ImageSet("blurred, σ = 0.5 px", "informational", blurred(near, 0.5)),
        ImageSet("rounded corners, r = 1 px", "informational", rounded(near_vertices, 1.0)),
        ImageSet("shifted by 1 px", "informational", shifted(near, 1)),
        ImageSet("shifted by 2 px", "informational", shifted(near, 2)),
        ImageSet("the training set's mean image", "informational", mean),
        ImageSet("uniform noise", "informational", noise),
    ]


def largest_delta(distances: np.ndarray, share: float) -> float:
    """The largest δ at which at most ``share`` of ``distances`` lie below it: the ⌊share · n⌋-th smallest."""
    return float(np.sort(distances)[math.floor(share * len(distances))])


def choose_delta(sets: list[ImageSet], distances: dict[str, np.ndarray]) -> float | None:
    """The rule: the most permissive δ, rounded down to ``STEP``, at which at most ``NEGATIVE_SHARE`` of every
    designated negative set is precise; None when that δ would leave a real triangle imprecise."""
    limit = min(largest_delta(distances[s.name], NEGATIVE_SHARE) for s in sets if s.role == "negative")
    delta = math.floor(round(limit / STEP, 9)) * STEP
    positives = max(distances[s.name].max() for s in sets if s.role == "positive")
    return round(delta, 10) if delta > positives else None


def markdown_table(sets: list[ImageSet], distances: dict[str, np.ndarray], deltas: list[float]) -> str:
    """Per set: n, quantiles, max and the share below each candidate δ (precise at that δ)."""
    header = ["set", "role", "n", *(f"p{100 * q:g}" for q in QUANTILES), "max", *(f"< {d:g}" for d in deltas)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for image_set in sets:
        values = distances[image_set.name]
        quantiles = [f"{v:.3f}" for v in (*np.quantile(values, QUANTILES), values.max())]
        shares = [f"{(values < d).mean():.3f}" for d in deltas]
        row = [image_set.name, ROLES[image_set.role], str(len(values)), *quantiles, *shares]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def delta(datamodule: TrianglesDataModule, num: int, num_positive: int) -> None:
    """Manifold distances of real triangles and of near-miss negatives; δ by the rule of ``choose_delta``."""
    started = time.perf_counter()
    sets = image_sets(datamodule, num, num_positive)
    print(f"built {len(sets)} image sets in {time.perf_counter() - started:.1f} s")
    manifold = TriangleManifold()
    started = time.perf_counter()
    distances = {s.name: manifold.distance(torch.from_numpy(s.images).float()).numpy() for s in sets}
    total = sum(len(d) for d in distances.values())
    print(f"fitted {total} images in {time.perf_counter() - started:.1f} s (torch threads: {torch.get_num_threads()})")
    chosen = choose_delta(sets, distances)
    print(markdown_table(sets, distances, list(GRID) if chosen is None else sorted({*GRID, chosen})))
    old = math.ceil(np.quantile(distances["hold-out triangles"], 0.999) / 0.05) * 0.05
    print(f"old rule, the hold-out triangles' 99.9th percentile rounded up to 0.05: {old:.2f}")
    rule = f"at most {NEGATIVE_SHARE:.0%} of every designated negative set precise, every real triangle precise"
    print(f"suggested delta ({rule}; rounded down to {STEP}): {'none satisfies it' if chosen is None else chosen}")


def speed(datamodule: TrianglesDataModule, num_fake: int, num_real: int) -> None:
    """Wall time of building the 80k set, of the scorer's setup, precision on ``num_fake`` samples of an untrained
    InfoGAN G, and recall (G inversion) on ``num_real`` test triangles."""
    started = time.perf_counter()
    generate(datamodule.num_images, datamodule.data_seed)
    print(f"build {datamodule.num_images} images: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    datamodule.arrays()
    print(f"load (or build and cache) {datamodule.cache_path}: {time.perf_counter() - started:.1f} s")

    generator = InfoGANGenerator().eval()
    scorer = TriangleScorer(num_fake=num_fake, num_real=num_real)
    timings = {}
    started = time.perf_counter()
    scorer.setup(datamodule, torch.device("cpu"))
    timings["setup (banks, real images)"] = time.perf_counter() - started
    scorer.reset()
    z = generator.sample_latent(num_fake, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fake = torch.cat([generator(chunk) for chunk in z.split(500)])
    started = time.perf_counter()
    for chunk in fake.split(500):
        scorer.update(chunk)
    timings[f"precision on {num_fake} samples (update)"] = time.perf_counter() - started
    started = time.perf_counter()
    metrics = scorer.compute(generator)
    timings[f"recall on {num_real} test triangles (compute)"] = time.perf_counter() - started
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s")
    print(f"metrics of the untrained G: {metrics}; torch threads: {torch.get_num_threads()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["delta", "speed"])
    parser.add_argument("--root", default="data", help="data root holding the triangles cache")
    parser.add_argument("--num", type=int, default=2000, help="delta: images per near-miss set")
    parser.add_argument("--num-positive", type=int, default=10_000, help="delta: hold-out and test triangles each")
    parser.add_argument("--num-fake", type=int, default=1000)
    parser.add_argument("--num-real", type=int, default=500)
    args = parser.parse_args()
    datamodule = TrianglesDataModule(root=args.root)
    if args.task == "delta":
        delta(datamodule, args.num, args.num_positive)
    else:
        speed(datamodule, args.num_fake, args.num_real)


if __name__ == "__main__":
    main()
