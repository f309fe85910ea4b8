"""Shared fixtures: compose the real Hydra configs; the real Fashion-MNIST files. Helpers live in tests/helpers/."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ganbench.train import CONFIG_DIR
from tests.helpers.fashion_mnist import (
    FASHION_MNIST_DIR,
    FASHION_MNIST_FILES,
    FASHION_MNIST_PACKAGE,
    packaged_fashion_mnist,
)


@pytest.fixture
def make_config() -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, exactly as ganbench-train does (without the Hydra run context)."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture(scope="session")
def fashion_mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_root holding the real Fashion-MNIST as torchvision reads it: ``FashionMNIST/raw/<IDX name>``.

    torchvision opens only the uncompressed names, and would not unpack the package's .gz files itself (it unpacks
    only what it downloaded, and Debian's re-gzipped files do not match its checksums), so they are gunzipped here
    (about 0.5 s, 55 MB under pytest's tmp dir, never in the repository). Skips when the package is not installed."""
    files = packaged_fashion_mnist()
    missing = [name for name in FASHION_MNIST_FILES if name not in files]
    if missing:
        pytest.skip(
            f"real Fashion-MNIST files not installed (no {', '.join(missing)} in {FASHION_MNIST_DIR}): "
            f"apt-get install {FASHION_MNIST_PACKAGE} (Debian/Ubuntu; .ci/run installs it when run as root)"
        )
    raw = tmp_path_factory.mktemp("fashion_mnist_real") / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, source in files.items():
        if source.suffix != ".gz":
            (raw / name).symlink_to(source)
            continue
        with gzip.open(source, "rb") as packed, (raw / name).open("wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    return raw.parent.parent
