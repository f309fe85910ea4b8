"""torchvision's real loaders on tiny datasets written in their real on-disk formats (no network).

MNIST/Fashion-MNIST: uncompressed IDX files in <root>/<Class>/raw/ (torchvision only checks that they exist).
CIFAR-10 and CelebA: torchvision checks each file against the md5 of the published file, which no small fixture can
match; the tests point those class-level checksum tables at the fixtures' own md5 (monkeypatch), so the real integrity
check, parsing and image decoding all run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from ganbench.data.torchvision_datasets import TorchvisionDataModule
from ganbench.errors import UserError
from ganbench.train import CONFIG_DIR
from tests.helpers.image_files import write_celeba, write_cifar10, write_mnist_like


@dataclass(frozen=True)
class Case:
    config: str
    dataset_class: str
    write: Callable[[Path, pytest.MonkeyPatch], None]
    shape: tuple[int, int, int]
    counts: dict[str, int]
    folder: str
    crop: int | None = None

    def datamodule(self, root: Path, **kwargs) -> TorchvisionDataModule:
        return TorchvisionDataModule(
            self.config, self.dataset_class, str(root), self.shape[1], self.shape[0], crop=self.crop, **kwargs
        )


CASES = [
    Case(
        "mnist", "MNIST", lambda r, m: write_mnist_like(r, "MNIST"), (1, 28, 28), {"train": 6, "test": 4}, "MNIST/raw"
    ),
    Case(
        "fashion_mnist",
        "FashionMNIST",
        lambda r, m: write_mnist_like(r, "FashionMNIST"),
        (1, 28, 28),
        {"train": 6, "test": 4},
        "FashionMNIST/raw",
    ),
    Case("cifar10", "CIFAR10", write_cifar10, (3, 32, 32), {"train": 15, "test": 3}, "cifar-10-batches-py"),
    Case(
        "celeba",
        "CelebA",
        write_celeba,
        (3, 64, 64),
        {"train": 4, "valid": 2, "test": 2, "all": 8},
        "celeba",
        crop=160,
    ),
]
IDS = [case.config for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_real_loaders_serve_scaled_images_per_split(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.write(tmp_path, monkeypatch)
    datamodule = case.datamodule(tmp_path)
    datamodule.prepare_data()
    for split, count in case.counts.items():
        images = datamodule.split_dataset(split)
        assert len(images) == count, split
        assert all(isinstance(images[i], torch.Tensor) and images[i].shape == case.shape for i in range(count))
        assert all(images[i].dtype == torch.float32 for i in range(count))
        assert all(images[i].min() >= -1 and images[i].max() <= 1 for i in range(count))
    train = datamodule.split_dataset("train")
    torch.testing.assert_close(train[0], torch.full(case.shape, -1.0), rtol=0, atol=1e-6)  # pixel 0
    torch.testing.assert_close(train[1], torch.full(case.shape, 1.0), rtol=0, atol=1e-6)  # pixel 255
    assert train[2].unique().numel() > 2, "random pixels stay distinct"
    assert len({datamodule.reference_id(split) for split in case.counts}) == len(case.counts)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_train_loader_yields_one_tensor_of_batches_per_step(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.write(tmp_path, monkeypatch)
    datamodule = case.datamodule(tmp_path, batch_size=2, seed=1)
    datamodule.batches_per_step = 2
    batches = list(datamodule.train_dataloader())
    assert len(batches) == case.counts["train"] // 4, "incomplete batches are dropped"
    assert all(isinstance(batch, torch.Tensor) and batch.shape == (4, *case.shape) for batch in batches)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_dataset_names_folder_and_fix(case: Case, tmp_path: Path) -> None:
    datamodule = case.datamodule(tmp_path / "empty")  # constructing touches no files
    with pytest.raises(UserError) as raised:
        datamodule.prepare_data()
    message = str(raised.value)
    assert str(tmp_path / "empty" / case.folder) + "/" in message
    assert "dataset.download=true" in message and "data_root=" in message and case.config in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("case", "module", "function"),
    [
        (CASES[0], "torchvision.datasets.mnist", "download_and_extract_archive"),
        (CASES[2], "torchvision.datasets.cifar", "download_and_extract_archive"),
        (CASES[3], "torchvision.datasets.celeba", "download_file_from_google_drive"),
    ],
    ids=["mnist", "cifar10", "celeba"],
)
def test_failed_download_is_a_user_error(
    case: Case, module: str, function: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No network: the real download code runs until the fetch, which fails as it does offline."""

    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(f"{module}.{function}", offline)
    with pytest.raises(UserError, match="download") as raised:
        case.datamodule(tmp_path, download=True).split_dataset("test")
    assert str(tmp_path / case.folder) in str(raised.value)


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"dataset\.channels=1"):
        TorchvisionDataModule("mnist", "MNIST", str(tmp_path), 28, channels=3)
    with pytest.raises(UserError, match="choose one of MNIST, FashionMNIST, CIFAR10, CelebA"):
        TorchvisionDataModule("svhn", "SVHN", str(tmp_path), 32, channels=3)
    with pytest.raises(UserError, match="no split 'valid'"):
        TorchvisionDataModule("mnist", "MNIST", str(tmp_path), 28, channels=1).split_dataset("valid")


G_STEPS = {"mnist": 15625, "fashion_mnist": 15625, "cifar10": 78125, "celeba": 101250}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_instantiates_and_loads(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """conf/dataset/<name>.yaml → the datamodule, reading data_root (model and eval overridden: this test is about
    the dataset node, not the image model or the Inception protocol)."""
    overrides = [f"dataset={case.config}", "model=mlp", "eval=mixture", f"data_root={tmp_path}"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    assert cfg.training.g_steps == G_STEPS[case.config] and cfg.dataset.download is False
    case.write(tmp_path, monkeypatch)
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, TorchvisionDataModule) and datamodule.name == case.config
    assert datamodule.batch_size == 64 and datamodule.root == str(tmp_path)
    assert datamodule.split_dataset("test")[0].shape == case.shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_selects_image_model_and_inception_protocol(case: Case) -> None:
    missing = [name for name in ("model/infogan.yaml", "eval/inception.yaml") if not (Path(CONFIG_DIR) / name).exists()]
    if missing:
        pytest.skip(f"conf/{' and conf/'.join(missing)} not written yet (the image datasets select them by default)")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        try:
            cfg = compose("config", overrides=[f"dataset={case.config}"])
        except ConfigCompositionException as error:
            pytest.fail(
                f"{error} — Hydra lets a config override only the groups listed before it in the defaults list: "
                "conf/config.yaml must list `eval` before `dataset`."
            )
    assert cfg.model.name == "infogan" and cfg.dataset.name == case.config
    assert cfg.model.generator.image_size == case.shape[1] and cfg.model.generator.channels == case.shape[0]
