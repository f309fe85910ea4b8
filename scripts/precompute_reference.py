"""Fill the image protocol's real-statistics cache before training, e.g. on a machine with a GPU or before a DDP run
(rank 0 would otherwise compute them while the other ranks wait). Takes the same Hydra overrides as ganbench-train:

    python scripts/precompute_reference.py dataset=cifar10 data_root=/data \
        eval.scorers.inception.weights_path=/models/weights-inception-2015-12-05-6726825d.pth

Prints, per scorer, whether the statistics were found or written, and where.
"""

from __future__ import annotations

import sys

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate

from ganbench.errors import UserError, find_user_error
from ganbench.metrics.inception import InceptionScorer
from ganbench.train import CONFIG_DIR


def precompute(overrides: list[str]) -> list[str]:
    """Set up every scorer of the composed protocol that has real statistics; one line per scorer."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    datamodule = instantiate(cfg.dataset)
    scorers = {name: instantiate(node) for name, node in cfg.eval.scorers.items()}
    cached = {name: scorer for name, scorer in scorers.items() if isinstance(scorer, InceptionScorer)}
    if not cached:
        raise UserError(f"the protocol of eval ({', '.join(scorers)}) has no real-image statistics: use eval=inception")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lines = []
    for name, scorer in cached.items():
        scorer.setup(datamodule, device)
        action = "found" if scorer.cache_hit else "wrote"
        lines.append(f"{name}: {action} {scorer.reference_path} ({scorer.reference_id}, {scorer.num_real} images)")
    return lines


def main(argv: list[str] | None = None) -> int:
    try:
        for line in precompute(sys.argv[1:] if argv is None else argv):
            print(line)
    except Exception as error:  # a UserError (possibly wrapped by instantiate) or a bad override: one line, exit 2
        user_error = find_user_error(error)
        if user_error is None and not isinstance(error, HydraException):
            raise
        print(f"ganbench: {user_error or error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
