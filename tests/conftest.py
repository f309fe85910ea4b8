"""Shared fixtures: compose the real Hydra configs, and run the real console scripts in subprocesses."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ganbench.train import CONFIG_DIR

BIN_DIR = Path(sys.executable).parent
# Small, fast settings for runs inside tests; they never touch the network.
FAST = [
    "logger=none",
    "training.g_steps=20",
    "eval.every_n_g_steps=10",
    "eval.num_samples=200",
    "dataset.batch_size=16",
    "trainer.log_every_n_steps=5",
]


@pytest.fixture
def make_config() -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, exactly as ganbench-train does (without the Hydra run context)."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


def run_cli(script: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (ganbench-train, ganbench-report) the way a user types it."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [str(BIN_DIR / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"  # Debian's package of the original Fashion-MNIST IDX files
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # where that package puts them
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _package_files(package: str) -> list[Path]:
    """The files a Debian package installed (``dpkg -L``); empty without dpkg or the package."""
    if shutil.which("dpkg") is None:
        return []
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    return [Path(line) for line in listed.stdout.splitlines()] if listed.returncode == 0 else []


def packaged_fashion_mnist() -> dict[str, Path]:
    """The installed Fashion-MNIST files by IDX name (the package ships them gzipped; a plain copy is taken too).

    Asks dpkg first, so that the files are found wherever a future package version puts them, then the known folder
    (a container that has the files without dpkg's database)."""
    candidates = _package_files(FASHION_MNIST_PACKAGE) or sorted(FASHION_MNIST_DIR.glob("*"))
    found = {}
    for path in candidates:
        name = path.name.removesuffix(".gz")
        if name in FASHION_MNIST_FILES and path.is_file():
            found[name] = path
    return found


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
