"""Throughput of the image protocol: generated images per second through the Inception scorer, with a cold real-
statistics cache (the real images pass through the network too) and a warm one (only the generated images do).

    python scripts/bench_eval.py --num-fake 40 --num-real 40 --batch-size 10

Uses random-weight Inception weights from the test fixtures (no download): the network does the same arithmetic
whatever its weight values, so throughput does not depend on them. Runs on the CPU and, if available, on CUDA
(``--devices cuda``: the GPU alone, e.g. with the protocol's 10,000 images).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test fixtures live in the repository's tests/

from ganbench.metrics.feature_networks import INCEPTION_WEIGHTS_FILE, InceptionV3Features
from ganbench.metrics.inception import InceptionScorer
from tests.helpers.inception import RandomImages, write_random_inception_weights


def timed(device: torch.device, work: Callable[[], object]) -> float:
    """Wall seconds of ``work``, waiting for queued GPU kernels on both ends."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def run_case(args: argparse.Namespace, network: InceptionV3Features, cache_dir: Path, device: torch.device) -> str:
    """One evaluation: setup (cache miss or hit), the generated images in chunks, compute; one table row."""
    datamodule = RandomImages(image_size=args.image_size, channels=args.channels, sizes={"test": args.num_real})
    scorer = InceptionScorer(
        metrics=args.metrics.split(","),
        num_real=args.num_real,
        real_batch_size=args.batch_size,
        cache_dir=cache_dir,
        feature_network=network,
        kid_subset_size=min(1000, args.num_real, args.num_fake),
    )
    fake = torch.rand(args.num_fake, args.channels, args.image_size, args.image_size, device=device) * 2 - 1
    setup_s = timed(device, lambda: scorer.setup(datamodule, device))
    scorer.reset()
    update_s = timed(device, lambda: [scorer.update(chunk) for chunk in fake.split(args.batch_size)])
    compute_s = timed(device, lambda: scorer.compute(torch.nn.Identity()))
    total_s = setup_s + update_s + compute_s
    cache = "warm (hit)" if scorer.cache_hit else "cold (miss)"
    return (
        f"| {device.type} | {cache} | {setup_s:.1f} | {args.num_fake / update_s:.1f} | {compute_s:.1f} "
        f"| {args.num_fake / total_s:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-fake", type=int, default=40, help="generated images per evaluation")
    parser.add_argument("--num-real", type=int, default=40, help="real images for the statistics")
    parser.add_argument("--batch-size", type=int, default=10, help="chunk size of generated and real images")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--metrics", default="fid,is,kid")
    parser.add_argument(
        "--devices", default="cpu,cuda", help="devices to measure, in order; cuda is left out where torch sees none"
    )
    args = parser.parse_args()
    wanted = [torch.device(name) for name in args.devices.split(",")]
    devices = [device for device in wanted if device.type != "cuda" or torch.cuda.is_available()]
    print(
        f"{args.num_fake} generated / {args.num_real} real {args.channels}×{args.image_size}² images, batch "
        f"{args.batch_size}, metrics {args.metrics}, torch threads {torch.get_num_threads()}"
    )
    print("| device | real statistics | setup s | update img/s | compute s | end-to-end generated img/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        weights = write_random_inception_weights(Path(scratch) / INCEPTION_WEIGHTS_FILE)
        for device in devices:
            network = InceptionV3Features(weights).to(device)
            with torch.no_grad():  # the first forward allocates and tunes kernels: keep it out of the figures
                network(
                    torch.zeros(args.batch_size, 3, args.image_size, args.image_size, dtype=torch.uint8, device=device)
                )
            cache_dir = Path(scratch) / f"cache-{device.type}"
            for _ in ("cold", "warm"):
                print(run_case(args, network, cache_dir, device), flush=True)


if __name__ == "__main__":
    main()
