"""Throughput of N ganbench-train runs packed on one machine: N real processes at once, total G steps per second.

Small runs (the ring mixture's MLPs) leave most of a GPU idle; this measures how much running several at once gains.
Each run is a plain `ganbench-train` launch (logger=none, one evaluation at the end) in its own run directory; its
summary.json gives its G steps and its in-process wall time. Two totals per N: end to end (Σ G steps over the time
from the first launch to the last exit, process start-up included) and in-run (Σ of each run's G steps / wall time).

    python scripts/bench_pack.py --accelerator gpu --steps 500 --runs 1,2,4,8
    python scripts/bench_pack.py --accelerator cpu --steps 50 --runs 1,2 --threads 1   # smoke test
    python scripts/bench_pack.py --accelerator gpu -- dataset=grid loss=wgan_gp  # extra overrides for every run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAIN = Path(sys.executable).parent / "ganbench-train"  # the console script of this interpreter's environment


def launch(run_dir: Path, accelerator: str, steps: int, threads: int, seed: int, extra: list[str]) -> subprocess.Popen:
    """One ganbench-train run; its output goes to <run_dir>/launch.log."""
    run_dir.mkdir(parents=True)
    overrides = [
        f"trainer={accelerator}",
        "logger=none",
        f"training.g_steps={steps}",
        f"eval.every_n_g_steps={steps}",
        f"training.checkpoint_every_n_g_steps={steps}",
        f"cpu_threads={threads}",
        f"seed={seed}",
        *extra,
        f"hydra.run.dir={run_dir}",
    ]
    with (run_dir / "launch.log").open("w") as log:
        return subprocess.Popen([str(TRAIN), *overrides], stdout=log, stderr=subprocess.STDOUT)


def pack(n: int, root: Path, accelerator: str, steps: int, threads: int, extra: list[str]) -> tuple[str, bool]:
    """N runs at once; their table row and whether all of them completed."""
    started = time.perf_counter()
    processes = [launch(root / f"run{i}", accelerator, steps, threads, i, extra) for i in range(n)]
    codes = [process.wait() for process in processes]
    wall_s = time.perf_counter() - started
    records = []
    for i in range(n):
        summary = root / f"run{i}" / "summary.json"
        records.append(json.loads(summary.read_text()) if summary.exists() else {"status": "no record", "g_steps": 0})
    completed = [r for r, code in zip(records, codes, strict=True) if code == 0 and r["status"] == "completed"]
    g_steps = sum(r["g_steps"] for r in completed)
    in_run = sum(r["g_steps"] / r["wall_time_s"] for r in completed)
    per_run = in_run / len(completed) if completed else 0.0
    figures = f"{wall_s:.1f} | {g_steps / wall_s:.1f} | {in_run:.1f} | {per_run:.1f}"
    return f"| {n} | {threads} | {len(completed)}/{n} | {figures} |", len(completed) == n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accelerator", default="gpu", choices=["cpu", "gpu"], help="trainer=cpu or trainer=gpu")
    parser.add_argument("--steps", type=int, default=500, help="G steps per run")
    parser.add_argument("--runs", default="1,2,4,8", help="the numbers of runs packed at once, comma-separated")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads per run (default: the cores / N, so N runs share the cores)"
    )
    parser.add_argument("--out", type=Path, help="a new directory for the runs (default: a new temporary one)")
    parser.add_argument("overrides", nargs="*", help="extra ganbench-train overrides for every run (after --)")
    args = parser.parse_args()
    counts = [int(n) for n in args.runs.split(",")]
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty: runs launched into finished run directories would not train")
    root = args.out or Path(tempfile.mkdtemp(prefix="bench_pack-"))
    print(
        f"accelerator={args.accelerator} steps={args.steps} cores={os.cpu_count()} runs in {root} "
        f"overrides={' '.join(args.overrides) or 'none'}"
    )
    print(
        "| runs | threads per run | completed | wall s | total G steps/s (end to end) | total G steps/s (in-run) "
        "| per run (in-run) |"
    )
    print("|---|---|---|---|---|---|---|")
    all_completed = True
    for n in counts:
        threads = args.threads or max(1, (os.cpu_count() or 1) // n)
        row, completed = pack(n, root / f"n{n}", args.accelerator, args.steps, threads, args.overrides)
        print(row, flush=True)
        all_completed &= completed
    if not all_completed:
        sys.exit(f"bench_pack: some runs did not complete; see launch.log in their run directories under {root}")


if __name__ == "__main__":
    main()
