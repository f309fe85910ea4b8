"""Stand-ins for the image protocol's tests and benchmark: random Inception weights, a tiny random DINOv2 ViT's
weights file, a tiny feature network and an in-memory image dataset. Nothing here downloads anything."""

from __future__ import annotations

import zlib
from pathlib import Path

import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset, TensorDataset

from ganbench.data.images import ImageDataModule, ImagesOnly
from ganbench.metrics.feature_networks import Features


def write_random_inception_weights(path: Path, seed: int = 0) -> Path:
    """A random-weight state_dict in the format of the torchmetrics/torch-fidelity Inception weights file (96 MB).

    torchvision's Inception v3 with 1008 classes and no aux head has exactly torch-fidelity's parameter names and
    shapes (pytorch-fid loads its weights into it), so it builds the file without patching torch-fidelity's
    download. Conv/Linear weights get Kaiming-normal init: PyTorch's default init makes deep features vanish (FID ≈ 0,
    IS = 1 for any data). Throughput does not depend on the weight values, so the benchmark uses this file too.
    """
    torch.manual_seed(seed)
    network = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    for module in network.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return path


TINY_DINOV2 = {"model": "vit_small_patch14_dinov2", "embed_dim": 32, "depth": 2, "num_heads": 2}  # a 70k-weight ViT


def write_random_dinov2_weights(path: Path, seed: int = 0) -> Path:
    """A random-weight TINY_DINOV2 state_dict as a timm ``.safetensors`` file, the format of timm's hub weights.

    Created at timm's default 518 px, so its position embedding has the 37×37 grid of the real checkpoints and
    loading it at 224 px goes through the resampling of the real weights."""
    torch.manual_seed(seed)
    architecture = {key: value for key, value in TINY_DINOV2.items() if key != "model"}
    network = timm.create_model(TINY_DINOV2["model"], pretrained=False, num_classes=0, **architecture)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(network.state_dict(), str(path))
    return path


class TinyFeatures(nn.Module):
    """A cheap feature network with the contract of the Inception one (uint8 (N, 3, H, W) in, 8 features and 10
    logits out). ``calls`` counts batches, so a test can tell whether real images went through it."""

    num_features = 8
    num_logits = 10

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.project = nn.Linear(3 * 4 * 4, self.num_features)
        self.classify = nn.Linear(self.num_features, self.num_logits)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.calls = 0

    def forward(self, images: Tensor) -> Features:
        self.calls += 1
        pooled = F.adaptive_avg_pool2d(images.float() / 255.0, 4).flatten(1)
        features = torch.tanh(self.project(pooled))
        return Features(features, self.classify(features))


class RandomImages(ImageDataModule):
    """Uniform uint8-valued images scaled to [−1, 1], a fixed set per split (``sizes`` images each); with
    ``num_classes``, image i of a split is of class i % num_classes (else the dataset has no labels)."""

    def __init__(
        self,
        name: str = "random",
        image_size: int = 8,
        channels: int = 1,
        sizes: dict[str, int] | None = None,
        batch_size: int = 16,
        seed: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(name, image_size, channels, batch_size=batch_size, seed=seed, num_classes=num_classes)
        self.sizes = dict(sizes or {"train": 64, "test": 48})

    def _images(self, split: str) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(split.encode()))
        shape = (self.sizes[split], self.channels, self.image_size, self.image_size)
        pixels = torch.randint(0, 256, shape, generator=generator)
        return pixels.float() / 127.5 - 1.0

    def split_dataset(self, split: str) -> Dataset:
        return ImagesOnly(TensorDataset(self._images(split)))

    def labelled_dataset(self, split: str) -> Dataset:
        if self.num_classes is None:
            return super().labelled_dataset(split)
        images = self._images(split)
        return TensorDataset(images, torch.arange(len(images)) % self.num_classes)
