"""torchvision's image datasets (MNIST, Fashion-MNIST, CIFAR-10, CelebA) behind the ImageDataModule contract.

torchvision's own dataset classes read the files from where torchvision keeps them under ``root`` (the config's
``data_root``), so a folder prepared by torchvision elsewhere works as is. Nothing is downloaded unless
``download=true``: a missing or corrupt dataset, or a failed download, is a UserError naming the folder, the files
expected there and how to get them (protocol and layout: docs/datasets.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from ganbench.data.images import ImageDataModule, ImagesOnly
from ganbench.errors import UserError


@dataclass(frozen=True)
class Source:
    """A torchvision dataset class, how it spells each split, and what it expects on disk (for the error message)."""

    dataset_class: type[datasets.VisionDataset]
    splits: dict[str, dict[str, Any]]  # ganbench split name → the class's keyword arguments for it
    channels: int
    folder: str  # relative to root, where torchvision looks
    contents: str
    how_to_get: str


_TRAIN_FLAG = {"train": {"train": True}, "test": {"train": False}}
_IDX = "the uncompressed IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
_IDX += "t10k-labels-idx1-ubyte"
_GUNZIP = "or gunzip the four *-ubyte.gz files of {} into that folder"

SOURCES: dict[str, Source] = {
    "MNIST": Source(
        datasets.MNIST,
        _TRAIN_FLAG,
        1,
        "MNIST/raw",
        _IDX,
        _GUNZIP.format("https://ossci-datasets.s3.amazonaws.com/mnist/"),
    ),
    "FashionMNIST": Source(
        datasets.FashionMNIST,
        _TRAIN_FLAG,
        1,
        "FashionMNIST/raw",
        _IDX,
        _GUNZIP.format("https://github.com/zalandoresearch/fashion-mnist"),
    ),
    "CIFAR10": Source(
        datasets.CIFAR10,
        _TRAIN_FLAG,
        3,
        "cifar-10-batches-py",
        "the pickle batches data_batch_1 … data_batch_5, test_batch and batches.meta (checked against their md5)",
        "or unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into data_root",
    ),
    "CelebA": Source(
        datasets.CelebA,
        {split: {"split": split, "target_type": []} for split in ("train", "valid", "test", "all")},
        3,
        "celeba",
        "the folder img_align_celeba/ (the 202,599 aligned JPEGs) and list_eval_partition.txt, list_attr_celeba.txt, "
        "identity_CelebA.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt (checked against their md5)",
        "which needs the gdown package (Google Drive often refuses with a quota error), or download "
        "img_align_celeba.zip and the five .txt files from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and "
        "unzip the images there",
    ),
}


def to_symmetric_range(image: Tensor) -> Tensor:
    """[0, 1] → [−1, 1]; the clamp removes the rounding overshoot of resizing, so the contract's range holds exactly."""
    return image.mul(2).sub(1).clamp(-1, 1)


class TorchvisionDataModule(ImageDataModule):
    """One datamodule for every dataset in SOURCES: the config picks the class, the centre crop and the size.

    Images go ToTensor → centre crop ``crop`` (if set) → resize to ``image_size``² (a no-op at the native size) →
    [−1, 1]. Grey datasets keep one channel; ``channels`` must match the dataset.
    """

    def __init__(
        self,
        name: str,
        dataset_class: str,
        root: str,
        image_size: int,
        channels: int,
        download: bool = False,
        crop: int | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(name, image_size, channels, batch_size, num_workers, seed)
        if dataset_class not in SOURCES:
            raise UserError(
                f"dataset.dataset_class={dataset_class} is not supported: choose one of {', '.join(SOURCES)}."
            )
        self.source = SOURCES[dataset_class]
        if channels != self.source.channels:
            raise UserError(
                f"dataset.channels={channels} but {name} ({dataset_class}) images have {self.source.channels}: "
                f"set dataset.channels={self.source.channels}."
            )
        self.root = str(root)
        self.download = download
        steps: list[Any] = [transforms.ToTensor()]
        if crop:
            steps.append(transforms.CenterCrop(crop))
        steps += [transforms.Resize((image_size, image_size), antialias=True), transforms.Lambda(to_symmetric_range)]
        self.transform = transforms.Compose(steps)
        self._loaded: dict[str, Dataset] = {}

    def prepare_data(self) -> None:
        """Lightning runs this once per machine before anything else: download if asked, and fail early if missing."""
        self.split_dataset("train")

    def split_dataset(self, split: str) -> Dataset:
        if split not in self._loaded:
            self._loaded[split] = ImagesOnly(self._load(split))
        return self._loaded[split]

    def expected_folder(self) -> str:
        """The absolute folder torchvision reads, with a trailing separator (as the error message shows it)."""
        return os.path.join(os.path.abspath(self.root), self.source.folder, "")

    def _load(self, split: str) -> Dataset:
        if split not in self.source.splits:
            raise UserError(f"{self.name} has no split '{split}': choose one of {', '.join(self.source.splits)}.")
        cls = self.source.dataset_class
        try:
            return cls(self.root, transform=self.transform, download=self.download, **self.source.splits[split])
        except (RuntimeError, OSError) as error:  # files missing or corrupt; or the download failed (no network)
            reason = " ".join(str(error).split())
            raise UserError(
                f"{self.name}: torchvision.datasets.{cls.__name__} found no usable files in {self.expected_folder()} "
                f"(torchvision: {reason}). It expects there {self.source.contents}. Fix: run once with "
                f"dataset.download=true on a machine with network access, {self.source.how_to_get}; or copy the files "
                f"there from a machine that has them; or set data_root=<dir> so that <dir>/{self.source.folder}/ "
                f"holds them (now data_root={self.root})."
            ) from error
