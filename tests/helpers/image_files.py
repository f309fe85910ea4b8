"""Tiny datasets in the real on-disk formats that torchvision reads (IDX, CIFAR-10 pickles, CelebA JPEGs and lists)."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision import datasets


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """n uint8 images: the first all 0 (→ −1), the second all 255 (→ 1), the rest random."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    images[0], images[1] = 0, 255
    return images


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX format: magic (0x08 = uint8 << 8 | number of dimensions: 2051 images, 2049 labels), big-endian sizes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_like(root: Path, folder: str, train_images: int = 6) -> None:
    """MNIST's four IDX files under ``<root>/<folder>/raw/``: ``train_images`` training and 4 test images."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", train_images), ("t10k", 4)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images(n, (28, 28), seed=n))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def write_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(name: str, n: int, seed: int) -> list[str]:
        rows = images(n, (3, 32, 32), seed).reshape(n, 3072)  # CHW flattened per row, as in the real batches
        entry = {"batch_label": name, "labels": [i % 10 for i in range(n)], "data": rows, "filenames": [""] * n}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        return [name, md5(folder / name)]

    monkeypatch.setattr(datasets.CIFAR10, "train_list", [batch(f"data_batch_{i}", 3, i) for i in range(1, 6)])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [batch("test_batch", 3, 0)])
    meta = folder / "batches.meta"
    meta.write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": 3}))
    monkeypatch.setattr(datasets.CIFAR10, "meta", {**datasets.CIFAR10.meta, "md5": md5(meta)})


# 4 train, 2 valid, 2 test; images 0 and 1 (black, white) are in train. No split of one image: torchvision's CelebA
# squeezes the index list of a one-image split to a scalar and fails (no real split is that small).
CELEBA_PARTITION = [0, 0, 0, 0, 1, 1, 2, 2]


def write_celeba(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(CELEBA_PARTITION))]
    for name, image in zip(names, images(len(names), (218, 178, 3), seed=7), strict=True):
        Image.fromarray(image).save(folder / "img_align_celeba" / name, quality=95)
    attr_names = [f"attr{i}" for i in range(40)]
    landmark_names = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
    landmark_names += "rightmouth_x rightmouth_y"
    texts = {
        "list_eval_partition.txt": [f"{n} {p}" for n, p in zip(names, CELEBA_PARTITION, strict=True)],
        "identity_CelebA.txt": [f"{n} {i + 100}" for i, n in enumerate(names)],
        "list_attr_celeba.txt": [str(len(names)), " ".join(attr_names)] + [f"{n} " + " -1  1" * 20 for n in names],
        "list_bbox_celeba.txt": [str(len(names)), "image_id x_1 y_1 width height"]
        + [f"{n} 95 71 226 313" for n in names],
        "list_landmarks_align_celeba.txt": [str(len(names)), landmark_names]
        + [f"{n} 69  109  106  113   77  142   73  152  108  154" for n in names],
    }
    for filename, lines in texts.items():
        (folder / filename).write_text("\n".join(lines) + "\n")
    checksums = {filename: md5(folder / filename) for filename in texts}
    file_list = [(gid, checksums.get(name, md5), name) for gid, md5, name in datasets.CelebA.file_list]
    monkeypatch.setattr(datasets.CelebA, "file_list", file_list)
