"""Class-conditional GANs: labelled batches, one-hot conditioning, the exact conditional metric on the mixtures, the
per-class plots, the training step's labels, and conditional runs on ring, grid and 28-px images."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor

from ganbench.data.mixtures import MixtureDataModule, ring
from ganbench.errors import UserError
from ganbench.losses import GANLoss, NonSaturating
from ganbench.metrics.mixture import class_match
from ganbench.module import GANModule
from ganbench.nets.conditioning import with_one_hot
from ganbench.nets.mlp import MLPDiscriminator, MLPGenerator
from ganbench.plots import by_class
from ganbench.run import train
from ganbench.validate import ConfigError, validate
from tests.helpers.cli import FAST
from tests.helpers.image_files import write_mnist_like


def test_one_hot_joins_points_and_tiles_over_pixels() -> None:
    points = torch.tensor([[0.5, -1.0], [2.0, 3.0]])
    assert torch.equal(
        with_one_hot(points, torch.tensor([2, 0]), 3), torch.tensor([[0.5, -1.0, 0, 0, 1], [2.0, 3.0, 1, 0, 0]])
    )
    images = torch.zeros(2, 1, 2, 2)
    coded = with_one_hot(images, torch.tensor([1, 0]), 2)
    assert coded.shape == (2, 3, 2, 2)
    assert torch.equal(coded[0, 2], torch.ones(2, 2)) and torch.equal(coded[0, 1], torch.zeros(2, 2))
    assert with_one_hot(points, None, None) is points  # an unconditional network reads its input as it is
    with pytest.raises(ValueError, match="needs the labels"):
        with_one_hot(points, None, 3)


def test_class_match_on_exact_points() -> None:
    mixture = ring()  # mode k at angle 2πk/8, σ = 0.01: high quality within 0.03 of the mode
    means = mixture.means
    samples = torch.stack([means[0], means[0], means[1], means[2], means[2] + 0.1, torch.tensor([math.nan] * 2)])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    # class 0: both at mode 0; class 1: one at mode 1, one at mode 2; class 2: off the mode, non-finite
    metrics = class_match(samples, labels, mixture)
    assert metrics["class_match/0"] == 1.0 and metrics["class_match/1"] == 0.5 and metrics["class_match/2"] == 0.0
    assert all(math.isnan(metrics[f"class_match/{k}"]) for k in range(3, 8))  # no sample of these classes
    assert metrics["class_match"] == pytest.approx(0.5)  # the mean over the classes that have samples


def test_labelled_batches_are_the_unlabelled_points_with_their_modes() -> None:
    plain = next(iter(MixtureDataModule("ring", ring(), batch_size=64, seed=3).train_dataloader()))
    points, modes = next(iter(MixtureDataModule("ring", ring(), 64, 3, labels=True).train_dataloader()))
    assert torch.equal(points, plain)  # the same stream: a conditional run sees the data of the unconditional one
    assert torch.equal(modes, torch.cdist(points, ring().means).argmin(dim=1))
    with pytest.raises(UserError, match=r"has 8 modes.*set dataset.num_classes=8"):
        MixtureDataModule("ring", ring(), labels=True, num_classes=25)


def test_grid_rows_are_classes() -> None:
    samples = torch.arange(12.0)
    labels = torch.arange(12) % 3
    shown, columns = by_class(samples, labels, per_class=3)
    assert columns == 3 and shown.tolist() == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    shown, columns = by_class(samples[:7], labels[:7], per_class=8)  # class 1 and 2 have 2 samples: 2 columns
    assert columns == 2 and shown.tolist() == [0, 3, 1, 4, 2, 5]


class LabelSpy(MLPDiscriminator):
    """An MLP D that records the labels of each call with the inputs they came with."""

    def __init__(self) -> None:
        super().__init__(num_classes=8)
        self.calls: list[tuple[Tensor, Tensor]] = []

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        self.calls.append((x.detach().clone(), labels.clone()))
        return super().forward(x, labels)


def test_a_conditional_step_scores_real_and_generated_samples_with_the_real_batchs_labels(tmp_path: Path) -> None:
    discriminator = LabelSpy()
    module = GANModule(
        MLPGenerator(num_classes=8),
        discriminator,
        GANLoss("ns", NonSaturating()),
        lambda params: torch.optim.Adam(params, 1e-3),
        lambda params: torch.optim.Adam(params, 1e-3),
        n_critic=2,
        g_step_budget=2,
    )
    data = MixtureDataModule("ring", ring(), batch_size=16, labels=True)
    data.batches_per_step = 2
    trainer = pl.Trainer(max_epochs=-1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=data, ckpt_path=None)
    # per G step: D(real), D(fake) for each of 2 D steps, then D(fake) in the G step
    assert len(discriminator.calls) == 2 * 5
    for step in range(2):
        (real1, y1), (_, f1), (real2, y2), (_, f2), (_, g) = discriminator.calls[5 * step : 5 * step + 5]
        for real, labels in ((real1, y1), (real2, y2)):  # a real point's label is its mode
            assert torch.equal(labels, torch.cdist(real, ring().means).argmin(dim=1))
        assert torch.equal(f1, y1) and torch.equal(f2, y2) and torch.equal(g, y2)  # fakes for the same labels
        assert not torch.equal(y1, y2)  # each D step has its own real batch


def test_conditional_runs_are_refused_without_labels_or_conditional_networks(make_config) -> None:
    for overrides, message in [
        (["dataset=triangles"], "dataset=triangles has none"),
        (["loss=began"], "model.discriminator (ganbench.nets.autoencoder.began_discriminator) has none"),
        (["loss=vae"], "model.encoder"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            validate(make_config("conditional=true", *overrides))
    validate(make_config("conditional=true"))  # ring, MLP: accepted
    per_class = "eval.scorers.inception.metrics=[fid,intra_fid]"
    with pytest.raises(ConfigError, match="has intra_fid, the FID per class of a class-conditional G: set conditional"):
        validate(make_config("dataset=mnist", per_class))
    validate(make_config("dataset=mnist", per_class, "conditional=true"))


@pytest.mark.parametrize("dataset", ["ring", "grid"])
def test_a_conditional_run_on_the_mixtures_records_the_conditional_metric(
    make_config, tmp_path: Path, dataset: str
) -> None:
    record = train(make_config("conditional=true", f"dataset={dataset}", *FAST), tmp_path)
    classes = 8 if dataset == "ring" else 25
    assert record.status == "completed"
    assert {f"class_match/{k}" for k in range(classes)} <= record.final.keys()
    per_class = [record.final[f"class_match/{k}"] for k in range(classes)]
    assert record.final["class_match"] == pytest.approx(sum(per_class) / classes)  # 2,500 balanced samples
    assert (tmp_path / record.sample_image).exists()


def test_an_unconditional_run_has_no_conditional_metric(make_config, tmp_path: Path) -> None:
    record = train(make_config(*FAST), tmp_path)
    assert not any(key.startswith("class_match") for key in record.final)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["infogan_cpu", "mlp_image", "dcgan"])
def test_a_conditional_run_on_28_px_images(make_config, tmp_path: Path, model: str) -> None:
    """CGAN's one-hot networks (InfoGAN, the original GAN's MLPs) and DCGAN's projection D with conditional BN, on
    MNIST's IDX format with its labels."""
    write_mnist_like(tmp_path / "data", "MNIST", train_images=12)
    image_run = ["dataset=mnist", f"model={model}", "eval=moments", f"data_root={tmp_path / 'data'}"]
    tiny = ["logger=none", "training.g_steps=4", "eval.every_n_g_steps=2", "eval.num_samples=20"]
    cfg = make_config("conditional=true", *image_run, *tiny, "dataset.batch_size=4", "eval.num_diagnostic_real=4")
    (tmp_path / "run").mkdir()
    record = train(cfg, tmp_path / "run")
    assert record.status == "completed" and record.g_steps == 4
    assert all(math.isfinite(v) for k, v in record.final.items() if k != "d_auc")
    assert (tmp_path / "run" / record.sample_image).exists()
