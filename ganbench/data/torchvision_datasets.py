"""torchvision's image datasets (MNIST, Fashion-MNIST, CIFAR-10, CelebA) behind the ImageDataModule contract.

torchvision's own dataset classes read the files from where torchvision keeps them under ``root`` (the config's
``data_root``), so a folder prepared by torchvision elsewhere works as is. Nothing is downloaded unless
``download=true``: a missing dataset, or a failed download, is a UserError naming the folder, the files expected there
and how to get them; a file that is there but cannot be parsed is a CorruptFileError naming it, what is wrong and how
to fetch it again (protocol and layout: docs/datasets.md).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset
from torchvision import datasets, transforms
from torchvision.datasets.utils import check_integrity

from ganbench.data.idx import IMAGES, LABELS, check_idx
from ganbench.data.images import ImageDataModule, ImagesOnly
from ganbench.errors import CorruptFileError, UserError

# What parsing a corrupt file raises inside torchvision's dataset classes (unpickling a batch, which may name any
# module or attribute; reading the CSV-like annotations; the IDX reader's asserts), and what PIL raises decoding a
# broken or truncated image.
PARSE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ImportError,
    AssertionError,
)
DECODE_ERRORS = (OSError, SyntaxError, ValueError)


@dataclass(frozen=True)
class Source:
    """A torchvision dataset class, how it spells each split, and what it expects on disk (for the error message)."""

    dataset_class: type[datasets.VisionDataset]
    splits: dict[str, dict[str, Any]]  # ganbench split name → the class's keyword arguments for it
    channels: int
    folder: str  # relative to root, where torchvision looks
    contents: str
    how_to_get: str
    idx_prefixes: dict[str, str] = field(default_factory=dict)  # split → prefix of its IDX files (MNIST-likes)
    checksums: Callable[[Any], list[tuple[str, str]]] = lambda cls: []  # (file in folder, md5) torchvision checks
    image_folder: str | None = None  # in folder: the images decoded on access, <image_folder>/<dataset.filename[i]>


_TRAIN_FLAG = {"train": {"train": True}, "test": {"train": False}}
_IDX_PREFIXES = {"train": "train", "test": "t10k"}
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
        _IDX_PREFIXES,
    ),
    "FashionMNIST": Source(
        datasets.FashionMNIST,
        _TRAIN_FLAG,
        1,
        "FashionMNIST/raw",
        _IDX,
        _GUNZIP.format(
            "https://github.com/zalandoresearch/fashion-mnist or of Debian's package dataset-fashion-mnist "
            "(in /usr/share/datasets/fashion-mnist/; apt-get install --reinstall dataset-fashion-mnist restores them)"
        ),
        _IDX_PREFIXES,
    ),
    "CIFAR10": Source(
        datasets.CIFAR10,
        _TRAIN_FLAG,
        3,
        "cifar-10-batches-py",
        "the pickle batches data_batch_1 … data_batch_5, test_batch and batches.meta (checked against their md5)",
        "or unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into data_root",
        checksums=lambda cls: [*map(tuple, cls.train_list + cls.test_list), (cls.meta["filename"], cls.meta["md5"])],
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
        checksums=lambda cls: [(name, md5) for _, md5, name in cls.file_list if not name.endswith(".zip")],
        image_folder="img_align_celeba",
    ),
}


def one_line(error: BaseException) -> str:
    """An exception as ``Type: message`` on one line, to quote inside a one-line error message."""
    return " ".join(f"{type(error).__name__}: {error}".split())


@contextmanager
def corrupt_file_named(
    path: Path, problem: str, fix: str, errors: tuple[type[BaseException], ...] = PARSE_ERRORS
) -> Iterator[None]:
    """Turns a parser's error on a corrupt file into one CorruptFileError naming ``path`` (the file where it is known,
    else its folder), so that the CLI prints one line instead of a bare assert or a library traceback."""
    try:
        yield
    except errors as error:
        raise CorruptFileError(path, f"{problem} ({one_line(error)})", fix) from error


class CorruptImagesNamed(Dataset):
    """A dataset that decodes image files on access (CelebA): a broken image stops the run naming that file."""

    def __init__(self, dataset: Any, image_folder: Path, fix: str) -> None:
        self.dataset = dataset
        self.image_folder = image_folder
        self.fix = fix

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        image_file = self.image_folder / self.dataset.filename[index]
        with corrupt_file_named(image_file, "cannot decode the image", self.fix, DECODE_ERRORS):
            return self.dataset[index]


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
        labels: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(name, image_size, channels, batch_size, num_workers, seed, labels, num_classes)
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
        return ImagesOnly(self.labelled_dataset(split))

    def labelled_dataset(self, split: str) -> Dataset:
        """torchvision's own dataset: (image, target) pairs, the target being the class index for MNIST, Fashion-MNIST
        and CIFAR-10 (CelebA's are attributes, and its config declares no classes)."""
        if split not in self._loaded:
            self._loaded[split] = self._load(split)
        return self._loaded[split]

    def expected_folder(self) -> str:
        """The absolute folder torchvision reads, with a trailing separator (as the error message shows it)."""
        return os.path.join(os.path.abspath(self.root), self.source.folder, "")

    def _load(self, split: str) -> Dataset:
        if split not in self.source.splits:
            raise UserError(f"{self.name} has no split '{split}': choose one of {', '.join(self.source.splits)}.")
        self._check_idx_files(split)
        cls = self.source.dataset_class
        folder = Path(self.expected_folder())
        try:
            with corrupt_file_named(folder, "torchvision cannot parse the files in it", self._refetch_fix()):
                dataset = cls(self.root, transform=self.transform, download=self.download, **self.source.splits[split])
        except (RuntimeError, OSError) as error:  # files missing or corrupt; or the download failed (no network)
            raise self._not_loaded(error) from error
        if self.source.image_folder is None:
            return dataset
        image_folder = folder / self.source.image_folder
        return CorruptImagesNamed(dataset, image_folder, self._refetch_fix(f"the folder {image_folder}"))

    def _not_loaded(self, error: RuntimeError | OSError) -> UserError:
        """Why torchvision found no dataset: a file that is there but fails its md5 check, else missing files or a
        failed download (the folder, the files expected there and how to get them)."""
        if not self.download and (corrupt := self._checksum_failure()) is not None:
            return corrupt
        reason = " ".join(str(error).split())
        return UserError(
            f"{self.name}: torchvision.datasets.{self.source.dataset_class.__name__} found no usable files in "
            f"{self.expected_folder()} (torchvision: {reason}). It expects there {self.source.contents}. Fix: run once "
            f"with dataset.download=true on a machine with network access, {self.source.how_to_get}; or copy the "
            f"files there from a machine that has them; or set data_root=<dir> so that <dir>/{self.source.folder}/ "
            f"holds them (now data_root={self.root})."
        )

    def _refetch_fix(self, delete: str = "it") -> str:
        """How to replace a corrupt file: torchvision fetches again only what is missing (or fails its md5), so the
        bad copy must go first."""
        return (
            f"Fix: delete {delete}, then run once with dataset.download=true on a machine with network access, "
            f"{self.source.how_to_get}; or copy it again from a machine that has it."
        )

    def _check_idx_files(self, split: str) -> None:
        """The IDX files of an MNIST-like split, checked before torchvision's reader, which only asserts on them.

        Skipped while a file is missing: torchvision then says what is missing, or downloads all of them again."""
        prefix = self.source.idx_prefixes.get(split)
        if prefix is None:
            return
        folder, fix = Path(self.expected_folder()), self._refetch_fix()
        images, labels = folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"
        if not (images.exists() and labels.exists()):
            return
        num_images, num_labels = check_idx(images, IMAGES, fix), check_idx(labels, LABELS, fix)
        if num_images != num_labels:
            raise CorruptFileError(
                labels,
                f"it holds {num_labels:,} labels for the {num_images:,} images of {images.name} (files of two copies?)",
                self._refetch_fix(f"it and {images.name}"),
            )

    def _checksum_failure(self) -> CorruptFileError | None:
        """When torchvision finds its files "not found or corrupted": the first file that is there but differs from
        the published one (its md5), so that the message names it; None when files are only missing."""
        folder = Path(self.expected_folder())
        for name, md5 in self.source.checksums(self.source.dataset_class):
            path = folder / name
            if path.is_file() and not check_integrity(path, md5):
                return CorruptFileError(
                    path, "its md5 is not the published file's (a partial or modified copy)", self._refetch_fix()
                )
        return None
