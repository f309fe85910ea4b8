"""Image datasets as LightningDataModules: the contract every image dataset (torchvision's or embedded) fulfils.

Images are float tensors of shape (C, H, W) scaled to [−1, 1]; labels are dropped, except in the training batches of
a class-conditional run (``labels=True``: [images, class indices]). Training batches hold
``batches_per_step`` × ``batch_size`` images (one real batch per discriminator step; ``batch_size`` is global, split
across DDP processes); the evaluation protocol asks
for the real images of a named split through :meth:`ImageDataModule.eval_dataset` and identifies them for its
reference-statistics cache through :meth:`ImageDataModule.reference_id`.
"""

from __future__ import annotations

from abc import abstractmethod

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganbench.data.batching import process_batch_size
from ganbench.errors import UserError


class ImagesOnly(Dataset):
    """Drops the label of an (image, label) dataset, so that a batch is a single tensor."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Tensor:
        item = self.dataset[index]
        return item[0] if isinstance(item, tuple | list) else item


class ImageDataModule(pl.LightningDataModule):
    """Base of the image datasets: subclasses say where a split's images come from, this class batches them."""

    def __init__(
        self,
        name: str,
        image_size: int,
        channels: int,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        labels: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.labels = labels
        self.num_classes = num_classes  # of a labelled dataset (its config's), None without labels
        self.batches_per_step = 1

    @abstractmethod
    def split_dataset(self, split: str) -> Dataset:
        """The images of ``split`` (e.g. "train", "test") as (C, H, W) tensors in [−1, 1]; raises UserError when the
        files are missing, saying where they are expected and how to get them."""

    def labelled_dataset(self, split: str) -> Dataset:
        """(image, class index) pairs of ``split``, for class-conditional training; a dataset without labels refuses."""
        raise UserError(f"{self.name} has no class labels: a conditional run (conditional=true) needs labelled data")

    def eval_dataset(self, split: str) -> Dataset:
        """Real images for the evaluation protocol."""
        return self.split_dataset(split)

    def reference_samples(self, count: int, split: str = "test") -> Tensor:
        """The first ``count`` images of ``split``, (count, C, H, W): real images to compare generated ones with
        (ganbench.diagnostics)."""
        dataset = self.eval_dataset(split)
        return torch.stack([dataset[i] for i in range(min(count, len(dataset)))])  # type: ignore[arg-type]

    def reference_id(self, split: str) -> str:
        """Identifies the real images of ``split`` for caches: dataset, split, resolution and channels."""
        return f"{self.name}-{split}-{self.image_size}px-{self.channels}ch"

    def train_dataloader(self) -> DataLoader:
        """Shuffled, seeded by seed + rank; under DDP Lightning swaps in a DistributedSampler, so that the processes
        split each epoch between them."""
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        images = self.labelled_dataset("train") if self.labels else self.split_dataset("train")
        step_images = self.batch_size * self.batches_per_step
        if len(images) < step_images:  # type: ignore[arg-type]
            raise UserError(  # with drop_last no step could be taken: the run would end at once, short of its budget
                f"the {self.name} training split has {len(images)} images, fewer than one G step takes "  # type: ignore[arg-type]
                f"(dataset.batch_size={self.batch_size} × {self.batches_per_step} D steps = {step_images}); "
                "lower dataset.batch_size"
            )
        return DataLoader(
            images,
            batch_size=process_batch_size(self.batch_size, world_size) * self.batches_per_step,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed + rank),
            persistent_workers=self.num_workers > 0,
        )
