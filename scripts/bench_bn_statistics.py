"""Score a run's last checkpoint with each choice of G's BatchNorm statistics at evaluation (running, standing, batch).

    python scripts/bench_bn_statistics.py RUN_DIR [RUN_DIR ...]

Uses the run's own resolved config (config.yaml): its protocol's scorers, sample count, latents and data. Prints one
line per run and choice with the protocol's metrics and the diagnostics. Figures: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ganbench.batch_norm import CHOICES
from ganbench.diagnostics import headline
from ganbench.run import build_module
from ganbench.run_dir import LAST_CHECKPOINT, RESOLVED_CONFIG


def score(run_dir: Path, statistics: str) -> dict[str, float]:
    """The protocol's metrics and the sample diagnostics of ``run_dir``'s last checkpoint under ``statistics``."""
    cfg = OmegaConf.load(run_dir / RESOLVED_CONFIG)
    module = build_module(cfg)
    checkpoint = torch.load(run_dir / LAST_CHECKPOINT, map_location="cpu", weights_only=False)
    module.load_state_dict(checkpoint["state_dict"])
    evaluation = instantiate(cfg.eval, generator_bn=statistics)
    evaluation.setup_scorers(instantiate(cfg.dataset), torch.device("cpu"))
    metrics, _, _ = evaluation.score(module.sampling_generator, torch.device("cpu"))
    return {"g_step": float(checkpoint["gan_steps"]["g_steps"]), **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories with checkpoints/last.ckpt")
    args = parser.parse_args()
    for run_dir in args.runs:
        for statistics in CHOICES:
            started = time.perf_counter()
            result = score(run_dir, statistics)
            shown = headline(result) | {k: result[k] for k in ("fake_mean", "spread_ratio", "mean_gap")}
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
            elapsed = time.perf_counter() - started
            print(f"{run_dir} G step {result['g_step']:.0f} · {statistics}: {metrics} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
