"""Where the real Fashion-MNIST files of the Debian package are, when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
