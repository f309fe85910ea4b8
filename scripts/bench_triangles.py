"""Triangles protocol helper: derive δ from real hold-out triangles, and time the data build and the scoring.

    python scripts/bench_triangles.py delta [--num 10000]              # manifold distances of hold-out triangles
    python scripts/bench_triangles.py speed [--num-fake 1000 --num-real 500]

Both use the data cache under --root (the config's data_root, default ``data``). Figures: docs/triangles.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from ganbench.data.triangles import TrianglesDataModule, generate
from ganbench.metrics.triangles import TriangleManifold, TriangleScorer, stack_images
from ganbench.nets.infogan import InfoGANGenerator

QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


def delta(datamodule: TrianglesDataModule, num: int) -> None:
    """Quantiles of the hold-out triangles' distance to the manifold; δ = the 99.9th percentile rounded up to 0.05."""
    images = stack_images(datamodule.split_dataset("holdout"), num)
    started = time.perf_counter()
    distances = TriangleManifold().distance(images).numpy()
    elapsed = time.perf_counter() - started
    for q, value in zip(QUANTILES, np.quantile(distances, QUANTILES), strict=True):
        print(f"  {100 * q:5.1f}th percentile: {value:.4f}")
    print(f"distance of {len(images)} hold-out triangles fitted in {elapsed:.1f} s")
    suggested = math.ceil(np.quantile(distances, 0.999) / 0.05) * 0.05
    print(f"suggested delta (99.9th percentile rounded up to 0.05): {suggested:.2f}")


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
    parser.add_argument("--num", type=int, default=10_000, help="delta: hold-out triangles to fit")
    parser.add_argument("--num-fake", type=int, default=1000)
    parser.add_argument("--num-real", type=int, default=500)
    args = parser.parse_args()
    datamodule = TrianglesDataModule(root=args.root)
    if args.task == "delta":
        delta(datamodule, args.num)
    else:
        speed(datamodule, args.num_fake, args.num_real)


if __name__ == "__main__":
    main()
