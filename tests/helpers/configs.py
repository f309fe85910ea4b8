"""The options of ganbench's config groups, as the tests parametrize over them."""

from __future__ import annotations

from pathlib import Path

from ganbench.train import CONFIG_DIR


def choices(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(CONFIG_DIR) / group).glob("*.yaml"))


LOSSES = choices("loss")
DATASETS = choices("dataset")
MODELS = choices("model")
