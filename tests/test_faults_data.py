"""Dataset and cache files that exist but cannot be parsed stop a run with one line naming the file, the problem and
the fix — never a bare assert or a library traceback.

The files are written in their real formats (tests/test_image_datasets.py), then damaged the ways copies get damaged:
garbage bytes, a wrong magic number, cut short, the wrong image size, still gzip-compressed.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets

from ganbench.data.torchvision_datasets import TorchvisionDataModule
from ganbench.data.triangles import TrianglesDataModule
from ganbench.errors import CorruptFileError
from ganbench.metrics.reference import ReferenceCache, ReferenceStats
from tests.helpers.cli import FAST, run_cli
from tests.helpers.image_files import md5, write_celeba, write_cifar10, write_idx, write_mnist_like

TRAIN_IMAGES = "train-images-idx3-ubyte"  # 6 images: 16 + 6 × 784 = 4,720 bytes
TRAIN_LABELS = "train-labels-idx1-ubyte"


def _garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 20)  # 0x00010203 where the magic number should be


def _wrong_magic(path: Path) -> None:
    path.write_bytes(struct.pack(">I", 0x1F2E3D4C) + path.read_bytes()[4:])


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1234])


def _too_long(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * 10)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _wrong_dims(path: Path) -> None:
    write_idx(path, np.zeros((6, 32, 32), np.uint8))


def _gzipped(path: Path) -> None:
    path.write_bytes(gzip.compress(path.read_bytes()))


def _labels_for_images(path: Path) -> None:
    write_idx(path, np.zeros((6, 28, 28), np.uint8))  # an images file under the labels' name


IDX_FAULTS = [
    (TRAIN_IMAGES, _garbage, "bad magic number 0x00010203, expected 0x00000803 (IDX images)"),
    (TRAIN_IMAGES, _wrong_magic, "bad magic number 0x1f2e3d4c, expected 0x00000803 (IDX images)"),
    (TRAIN_IMAGES, _truncated, "truncated: 1,234 bytes, the header says 4,720"),
    (TRAIN_IMAGES, _too_long, "10 bytes too long: 4,730 bytes, the header says 4,720"),
    (TRAIN_IMAGES, _empty, "truncated: 0 bytes, shorter than the 16-byte header of IDX images"),
    (TRAIN_IMAGES, _wrong_dims, "the header says 6 images of 32×32 pixels, expected 28×28"),
    (TRAIN_IMAGES, _gzipped, "it is gzip-compressed, but torchvision reads the uncompressed IDX file"),
    (TRAIN_LABELS, _labels_for_images, "bad magic number 0x00000803, expected 0x00000801 (IDX labels)"),
]


def _message(raised: pytest.ExceptionInfo[CorruptFileError]) -> str:
    message = str(raised.value)
    assert "\n" not in message
    return message


def _mnist(root: Path, folder: str = "MNIST") -> TorchvisionDataModule:
    write_mnist_like(root, folder)
    return TorchvisionDataModule(folder.lower(), folder, str(root), 28, 1)


@pytest.mark.parametrize(("name", "damage", "problem"), IDX_FAULTS, ids=[f[1].__name__.strip("_") for f in IDX_FAULTS])
def test_damaged_idx_file_is_named_with_problem_and_fix(
    tmp_path: Path, name: str, damage: Callable[[Path], None], problem: str
) -> None:
    datamodule = _mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / name
    damage(path)
    with pytest.raises(CorruptFileError) as raised:
        datamodule.prepare_data()
    message = _message(raised)
    assert raised.value.path == path and message.startswith(f"{path} cannot be read: ")
    assert problem in message
    fix = "gunzip it there" if damage is _gzipped else "delete it, then run once with dataset.download=true"
    assert fix in message


def test_short_labels_file_is_named(tmp_path: Path) -> None:
    datamodule = _mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / TRAIN_LABELS
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(CorruptFileError, match=r"truncated: 12 bytes, the header says 14") as raised:
        datamodule.prepare_data()
    assert raised.value.path == path


def test_labels_that_do_not_pair_with_the_images_are_named(tmp_path: Path) -> None:
    datamodule = _mnist(tmp_path)
    write_idx(tmp_path / "MNIST" / "raw" / TRAIN_LABELS, np.arange(5))
    with pytest.raises(CorruptFileError, match=f"5 labels for the 6 images of {TRAIN_IMAGES}") as raised:
        datamodule.prepare_data()
    assert raised.value.path.name == TRAIN_LABELS and f"delete it and {TRAIN_IMAGES}, then run" in _message(raised)


def test_each_split_checks_its_own_files(tmp_path: Path) -> None:
    """A damaged test file does not stop training from loading, and is named when the evaluation asks for it."""
    datamodule = _mnist(tmp_path, "FashionMNIST")
    path = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    _garbage(path)
    datamodule.prepare_data()
    with pytest.raises(CorruptFileError) as raised:
        datamodule.split_dataset("test")
    assert raised.value.path == path and "apt-get install --reinstall dataset-fashion-mnist" in _message(raised)


def test_cifar10_batch_that_fails_its_md5_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path, monkeypatch)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    _garbage(path)
    with pytest.raises(CorruptFileError) as raised:
        TorchvisionDataModule("cifar10", "CIFAR10", str(tmp_path), 32, 3).prepare_data()
    assert raised.value.path == path and "its md5 is not the published file's" in _message(raised)
    assert "dataset.download=true" in _message(raised)


def test_cifar10_batch_that_cannot_be_unpickled_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A garbage batch whose md5 matches (it cannot with the published files: torchvision's check comes first) reaches
    torchvision's unpickling, which does not say which file it was reading: the folder is named."""
    write_cifar10(tmp_path, monkeypatch)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(pickle.dumps(["not", "a", "batch"]))
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    with pytest.raises(CorruptFileError) as raised:
        TorchvisionDataModule("cifar10", "CIFAR10", str(tmp_path), 32, 3).split_dataset("test")
    message = _message(raised)
    assert raised.value.path == folder and "torchvision cannot parse the files in it (TypeError: " in message


def test_celeba_annotation_that_fails_its_md5_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_celeba(tmp_path, monkeypatch)
    path = tmp_path / "celeba" / "list_eval_partition.txt"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CorruptFileError) as raised:
        TorchvisionDataModule("celeba", "CelebA", str(tmp_path), 64, 3, crop=160).prepare_data()
    assert raised.value.path == path and "its md5 is not the published file's" in _message(raised)


@pytest.mark.parametrize("damage", [_garbage, lambda path: path.write_bytes(path.read_bytes()[:2000])])
def test_celeba_image_that_cannot_be_decoded_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Callable[[Path], None]
) -> None:
    """CelebA decodes its JPEGs on access, during training: the broken one is named, with the folder to delete."""
    write_celeba(tmp_path, monkeypatch)
    images = tmp_path / "celeba" / "img_align_celeba"
    damage(images / "000003.jpg")
    train = TorchvisionDataModule("celeba", "CelebA", str(tmp_path), 64, 3, crop=160).split_dataset("train")
    assert train[1].shape == (3, 64, 64), "intact images still load"
    with pytest.raises(CorruptFileError) as raised:
        train[2]
    message = _message(raised)
    assert raised.value.path == images / "000003.jpg" and "cannot decode the image (" in message
    assert f"delete the folder {images}, then run once with dataset.download=true" in message


def test_garbage_triangles_cache_is_rebuilt_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    datamodule = TrianglesDataModule(tmp_path, num_images=16)
    datamodule.cache_path.parent.mkdir(parents=True)
    _garbage(datamodule.cache_path)
    assert datamodule.arrays()["coverage"].shape == (16, 28, 28)
    assert f"triangles cache {datamodule.cache_path} is unusable (ValueError: not an .npz archive" in caplog.text
    assert "rebuilding it" in caplog.text and "allow_pickle" not in caplog.text
    assert TrianglesDataModule(tmp_path, num_images=16).arrays()["coverage"].shape == (16, 28, 28), "cache rewritten"


@pytest.mark.parametrize("damage", [_garbage, _empty])
def test_garbage_reference_statistics_are_rebuilt_with_a_warning_naming_them(
    tmp_path: Path, damage: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    cache = ReferenceCache(tmp_path)
    path = cache.path("mnist-test-28px-1ch", {"n": 4})
    damage(path)
    built = ReferenceStats.from_features(torch.zeros(4, 8))
    with caplog.at_level(logging.WARNING, logger="ganbench.cache"):
        assert cache.load_or_build(path, {"n": 4}, lambda: built, num_samples=4, num_features=8) is built
    assert caplog.messages == [
        f"reference statistics file {path} is unusable (ValueError: not a torch file); rebuilding it"
    ]


@pytest.mark.slow
def test_cli_names_the_corrupt_mnist_file_in_one_line(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "data", "MNIST")
    path = tmp_path / "data" / "MNIST" / "raw" / TRAIN_IMAGES
    _wrong_magic(path)
    run_dir = tmp_path / "run"
    overrides = ["dataset=mnist", f"data_root={tmp_path / 'data'}", *FAST, f"hydra.run.dir={run_dir}"]
    result = run_cli("ganbench-train", *overrides, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    ours = [line for line in result.stderr.splitlines() if line.startswith("ganbench:")]
    assert ours == [result.stderr.splitlines()[-1]], "one line of ganbench's, the last one"
    assert ours[0].startswith(f"ganbench: {path} cannot be read: bad magic number 0x1f2e3d4c, expected 0x00000803")
    assert "dataset.download=true" in ours[0]
    assert not (run_dir / "checkpoints").exists(), "no training may start"


def test_unreadable_idx_file_is_named(tmp_path: Path) -> None:
    """A folder where a file should be (the one unreadable case that holds for root too, which ignores chmod)."""
    datamodule = _mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / TRAIN_IMAGES
    os.remove(path)
    path.mkdir()
    with pytest.raises(CorruptFileError, match=r"unreadable \(Is a directory\)") as raised:
        datamodule.prepare_data()
    assert raised.value.path == path
