"""The image protocol (docs/evaluation.md): FID/IS/KID (and the opt-in metrics, intra-FID included) from one feature
network, the real-statistics cache, offline Inception weights and DDP. Most tests use a tiny feature network; the real
Inception code path runs on a few images with random weights (the 2048-d FID eigen-decomposition alone takes 15–70 s
on 2 busy CPU cores, so the FID arithmetic is checked on the tiny network's features)."""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import time
import urllib.error
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
from hydra.utils import instantiate
from PIL import Image
from torch import Tensor, nn

from ganbench.errors import UserError
from ganbench.evaluation import Evaluation
from ganbench.metrics.feature_networks import (
    INCEPTION_WEIGHTS_FILE,
    PYTORCH_FID_WEIGHTS_FILE,
    RESIZES,
    InceptionV3Features,
    clean_resize,
    extract_features,
    to_network_input,
)
from ganbench.metrics.inception import METRICS as ALL_METRICS
from ganbench.metrics.inception import InceptionScorer, frechet_distance
from ganbench.metrics.prdc import density_coverage, precision_recall
from ganbench.metrics.reference import reference_key
from tests.helpers.image_files import write_mnist_like
from tests.helpers.inception import RandomImages, TinyFeatures, write_random_inception_weights

CPU = torch.device("cpu")
NUM_REAL = 32
NUM_CLASSES = 2  # of the labelled RandomImages: 16 real images per class
# Scores of features computed in other batch shapes (chunks, DDP ranks, by hand) differ by float32 rounding, which
# depends on the CPU's kernels and threads: measured up to 2.5e-6 relative (is_std) and 5.4e-8 absolute over chunk sizes
# 1-24, 1 and 2 threads, with and without MKL_ENABLE_INSTRUCTIONS=AVX2.
CHUNKING_REL, CHUNKING_ABS = 1e-5, 1e-6


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / INCEPTION_WEIGHTS_FILE)


def make_scorer(cache_dir: Path, **settings: Any) -> InceptionScorer:
    """A scorer on the tiny network, sized for a 48-image test split."""
    defaults: dict[str, Any] = {
        "num_real": NUM_REAL,
        "real_batch_size": 8,
        "cache_dir": cache_dir,
        "kid_subsets": 5,
        "kid_subset_size": 12,
        "is_splits": 2,
    }
    if "weights_path" not in settings:
        defaults["feature_network"] = TinyFeatures()
    return InceptionScorer(**(defaults | settings))


def fake_images(count: int = 24, seed: int = 1) -> Tensor:
    """Brighter than the real uniform images, and partly outside [−1, 1] (clamped by the scorer)."""
    return torch.rand(count, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.4


def balanced_labels(count: int) -> Tensor:
    """The classes the evaluation asks a conditional G for: 0, 1, …, K − 1, 0, …"""
    return torch.arange(count) % NUM_CLASSES


def evaluate(scorer: InceptionScorer, fake: Tensor, chunk: int = 10, labels: Tensor | None = None) -> dict[str, float]:
    """One evaluation in chunks, as the Evaluation callback runs it; ``labels``: a conditional G's classes."""
    scorer.reset()
    for start in range(0, len(fake), chunk):
        part = slice(start, start + chunk)
        scorer.update(fake[part], None if labels is None else labels[part])
    return scorer.compute(nn.Identity())


def independent_uint8(images: Tensor) -> Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).repeat(1, 3, 1, 1)


def independent_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Textbook float64 FID: ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)."""
    mu1, mu2 = real.mean(axis=0), fake.mean(axis=0)
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * root))


def test_network_input_clamps_rounds_and_tiles_grey() -> None:
    images = torch.tensor([-2.0, -1.0, 0.0, 254 / 127.5 - 1, 3.0]).view(1, 1, 1, 5)
    pixels = to_network_input(images)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 1, 5)
    assert pixels[0, :, 0].tolist() == [[0, 0, 128, 254, 255]] * 3
    with pytest.raises(UserError, match="1- or 3-channel"):
        to_network_input(torch.zeros(1, 2, 4, 4))


def test_fid_matches_an_independent_float64_computation(tmp_path: Path) -> None:
    datamodule, fake = RandomImages(), fake_images()
    scorer = make_scorer(tmp_path)
    scorer.setup(datamodule, CPU)
    result = evaluate(scorer, fake)

    network = TinyFeatures()
    with torch.no_grad():
        real = torch.stack([datamodule.eval_dataset("test")[i] for i in range(NUM_REAL)])
        real_features = network(independent_uint8(real)).pool.double().numpy()
        fake_features = network(independent_uint8(fake)).pool.double().numpy()
    expected = independent_fid(real_features, fake_features)
    assert result["fid"] == pytest.approx(expected, rel=1e-4)
    assert set(result) == {"fid", "is", "is_std", "kid", "kid_std"} and all(np.isfinite(list(result.values())))
    assert evaluate(scorer, fake) == result  # a repeated evaluation: the same arithmetic, the same scores
    # Other chunks are other matrix shapes, which round differently on some CPUs (IS moved in its 8th digit): equal
    # within float32 rounding; a lost or repeated chunk would move the scores by 1e-3 or more.
    assert evaluate(scorer, fake, chunk=7) == pytest.approx(result, rel=CHUNKING_REL, abs=CHUNKING_ABS)


def test_precision_recall_density_coverage_come_from_the_same_features(tmp_path: Path) -> None:
    """From the one feature pass and the cached real features: equal to the metrics on the features by hand."""
    datamodule, fake = RandomImages(), fake_images()
    scorer = make_scorer(tmp_path, metrics=["fid", "ipr", "dc"])
    scorer.setup(datamodule, CPU)
    result = evaluate(scorer, fake)
    network = TinyFeatures()
    with torch.no_grad():
        real = torch.stack([datamodule.eval_dataset("test")[i] for i in range(NUM_REAL)])
        real_features, fake_features = (network(independent_uint8(x)).pool for x in (real, fake))
    pr = precision_recall(real=real_features, fake=fake_features, k=3)
    assert (result["ipr_precision"], result["ipr_recall"]) == pytest.approx((pr["precision"], pr["recall"]))
    on_itself = evaluate(scorer, torch.stack([datamodule.eval_dataset("test")[i] for i in range(NUM_REAL)]))
    assert on_itself["ipr_precision"] == on_itself["ipr_recall"] == on_itself["coverage"] == 1.0  # the real set itself
    dc = density_coverage(real=real_features, fake=fake_features, k=5)
    assert (result["density"], result["coverage"]) == pytest.approx((dc["density"], dc["coverage"]))
    assert scorer.describe()["ipr"]["k"] == 3 and scorer.describe()["dc"]["k"] == 5
    assert set(result) == {"fid", "ipr_precision", "ipr_recall", "density", "coverage"}
    with pytest.raises(UserError, match=r"k = 3 needs at least k \+ 1 = 4.*eval.num_samples"):
        evaluate(scorer, fake[:3])
    fake[0, 0, 0, 0] = float("nan")
    assert all(np.isnan(list(evaluate(scorer, fake).values())))


def test_frechet_distance_matches_an_independent_float64_computation() -> None:
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(60, 6, generator=generator, dtype=torch.float64)
    fake = torch.randn(40, 6, generator=generator, dtype=torch.float64) * 1.5 + 0.3
    assert frechet_distance(real, fake) == pytest.approx(independent_fid(real.numpy(), fake.numpy()), rel=1e-9)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-9)


def _real_features_by_hand(datamodule: RandomImages) -> tuple[Tensor, Tensor]:
    """The tiny network's features of the first NUM_REAL labelled test images, and their classes."""
    dataset = datamodule.labelled_dataset("test")
    images, labels = (torch.stack(column) for column in zip(*(dataset[i] for i in range(NUM_REAL)), strict=True))
    with torch.no_grad():
        return TinyFeatures()(independent_uint8(images)).pool.double(), labels


def test_intra_fid_is_the_mean_of_the_fids_within_each_class(tmp_path: Path) -> None:
    datamodule, fake, labels = RandomImages(num_classes=NUM_CLASSES), fake_images(), balanced_labels(24)
    scorer = make_scorer(tmp_path, metrics=["fid", "intra_fid"])
    scorer.setup(datamodule, CPU)
    result = evaluate(scorer, fake, labels=labels)

    real_features, real_labels = _real_features_by_hand(datamodule)
    with torch.no_grad():
        fake_features = TinyFeatures()(independent_uint8(fake)).pool.double()
    expected = [
        independent_fid(real_features[real_labels == k].numpy(), fake_features[labels == k].numpy())
        for k in range(NUM_CLASSES)
    ]
    assert set(result) == {"fid", "intra_fid", "intra_fid/0", "intra_fid/1"}
    # The features by hand come from other batch shapes than the scorer's: float32 rounding (up to 2e-7 measured)
    assert [result[f"intra_fid/{k}"] for k in range(NUM_CLASSES)] == pytest.approx(expected, rel=CHUNKING_REL)
    assert result["intra_fid"] == pytest.approx(np.mean(expected), rel=CHUNKING_REL)
    assert result["fid"] == pytest.approx(independent_fid(real_features.numpy(), fake_features.numpy()), rel=1e-4)
    assert evaluate(scorer, fake, labels=labels) == result
    chunked = evaluate(scorer, fake, chunk=7, labels=labels)
    assert chunked == pytest.approx(result, rel=CHUNKING_REL, abs=CHUNKING_ABS)
    assert scorer.describe()["intra_fid"]["num_classes"] == NUM_CLASSES
    fake[0, 0, 0, 0] = float("nan")
    nan = evaluate(scorer, fake, labels=labels)
    assert set(nan) == set(result) and all(np.isnan(list(nan.values())))


def test_the_cache_stores_the_classes_and_a_hit_gives_the_same_intra_fid(tmp_path: Path) -> None:
    datamodule, fake, labels = RandomImages(num_classes=NUM_CLASSES), fake_images(), balanced_labels(24)
    make_scorer(tmp_path).setup(RandomImages(), CPU)  # the same images without labels: that file has no classes
    first = make_scorer(tmp_path, metrics=["intra_fid"])
    first.setup(datamodule, CPU)
    assert first.cache_hit is False and first.real_feature_passes > 0  # rebuilt, now with the classes
    assert torch.equal(torch.load(first.reference_path, weights_only=True)["real_labels"], balanced_labels(NUM_REAL))

    second = make_scorer(tmp_path, metrics=["intra_fid"])
    second.setup(datamodule, CPU)
    assert second.cache_hit is True and second.real_feature_passes == 0
    assert evaluate(second, fake, labels=labels) == evaluate(first, fake, labels=labels)


def test_intra_fid_without_labels_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="random has no class labels: drop intra_fid"):
        make_scorer(tmp_path, metrics=["intra_fid"]).setup(RandomImages(), CPU)
    scorer = make_scorer(tmp_path, metrics=["fid", "intra_fid"])
    scorer.setup(RandomImages(num_classes=NUM_CLASSES), CPU)
    with pytest.raises(UserError, match="needs a class-conditional generator: set conditional=true"):
        evaluate(scorer, fake_images())  # an unconditional G's labels are None


def test_a_class_with_fewer_than_two_samples_is_a_user_error(tmp_path: Path) -> None:
    scorer = make_scorer(tmp_path, metrics=["intra_fid"])
    scorer.setup(RandomImages(num_classes=NUM_CLASSES), CPU)
    labels = torch.zeros(24, dtype=torch.int64)
    labels[5] = 1
    with pytest.raises(UserError, match=r"class 1 has 16 real and 1 generated samples.*raise eval.num_samples"):
        evaluate(scorer, fake_images(), labels=labels)
    scorer = make_scorer(tmp_path / "20 classes", metrics=["intra_fid"])  # the same reference id, other classes
    scorer.setup(RandomImages(num_classes=20), CPU)  # 32 real images: classes 12 to 19 have one each
    with pytest.raises(UserError, match=r"class 12 has 1 real and 2 generated samples.*num_real \(real\)"):
        evaluate(scorer, fake_images(40), labels=torch.arange(40) % 20)


def test_non_finite_samples_give_nan_scores(tmp_path: Path) -> None:
    scorer = make_scorer(tmp_path)
    scorer.setup(RandomImages(), CPU)
    fake = fake_images()
    fake[3, 0, 0, 0] = float("nan")
    assert all(np.isnan(list(evaluate(scorer, fake).values())))


def test_cache_is_written_once_then_hit_without_a_real_image_pass(tmp_path: Path) -> None:
    datamodule, fake = RandomImages(), fake_images()
    first = make_scorer(tmp_path)
    first.setup(datamodule, CPU)
    assert first.cache_hit is False and first.real_feature_passes == NUM_REAL // 8
    assert first.reference_path is not None and first.reference_path.is_file()

    second = make_scorer(tmp_path)
    second.setup(datamodule, CPU)
    assert second.cache_hit is True and second.real_feature_passes == 0 and second.network.calls == 0
    assert second.reference_path == first.reference_path
    assert evaluate(second, fake) == evaluate(first, fake)
    assert list(tmp_path.iterdir()) == [first.reference_path]  # no temporary files left behind


@pytest.mark.parametrize(
    ("datamodule", "settings"),
    [
        (RandomImages(), {"split": "train"}),
        (RandomImages(), {"num_real": 24}),
        (RandomImages(), {"feature_network": TinyFeatures(seed=1)}),
        (RandomImages(image_size=16), {}),
    ],
    ids=["split", "num_real", "feature_network", "resolution"],
)
def test_cache_is_invalidated_when_the_protocol_changes(
    tmp_path: Path, datamodule: RandomImages, settings: dict[str, Any]
) -> None:
    make_scorer(tmp_path).setup(RandomImages(), CPU)
    changed = make_scorer(tmp_path, **settings)
    changed.setup(datamodule, CPU)
    assert changed.cache_hit is False and changed.real_feature_passes > 0
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_the_resize_is_part_of_the_cache_key_and_the_record(tmp_path: Path, inception_weights: Path) -> None:
    datamodule = RandomImages()
    keys = set()
    for resize in RESIZES:
        scorer = make_scorer(tmp_path, weights_path=inception_weights, resize=resize)
        keys.add(reference_key(scorer.reference_fields(datamodule)))
        assert scorer.network_id is not None and scorer.network_id["resize"] == resize
    assert len(keys) == len(RESIZES)
    assert scorer.network_id["weights_file"] == INCEPTION_WEIGHTS_FILE
    assert len(scorer.network_id["weights_sha256"]) == 64  # other weights, other key (tested with TinyFeatures)
    with pytest.raises(UserError, match="resize=bicubic is not a resize: choose one of tf1_bilinear"):
        make_scorer(tmp_path, weights_path=inception_weights, resize="bicubic")


def test_the_three_resizes_give_three_sets_of_features(inception_weights: Path) -> None:
    """clean-fid's point: the resize alone moves the features (and so FID) for the same 32-px images."""
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pools = {}
    for resize in RESIZES:
        network = InceptionV3Features(inception_weights, resize).eval()
        pools[resize] = extract_features(network, images).pool
    for first, second in [
        ("tf1_bilinear", "antialiased_bilinear"),
        ("tf1_bilinear", "clean"),
        ("clean", "antialiased_bilinear"),
    ]:
        gap = (pools[first] - pools[second]).norm() / pools[first].norm()
        assert gap > 1e-3, (first, second)


def test_the_clean_resize_is_pil_bicubic_and_the_network_then_leaves_the_image_as_it_is() -> None:
    flat = torch.full((1, 3, 32, 32), 77, dtype=torch.uint8)
    assert torch.equal(clean_resize(flat, 299), torch.full((1, 3, 299, 299), 77, dtype=torch.uint8))
    image = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 255).round().to(torch.uint8)
    resized = clean_resize(image, 299)
    by_hand = Image.fromarray(image[0, 1].numpy().astype(np.float32), mode="F").resize(
        (299, 299), Image.Resampling.BICUBIC
    )
    assert torch.equal(resized[0, 1], torch.from_numpy(np.asarray(by_hand).clip(0, 255)).round().to(torch.uint8))
    same = fidelity_inception.interpolate_bilinear_2d_like_tensorflow1x(
        resized.float(), size=(299, 299), align_corners=False
    )
    assert torch.equal(same, resized.float())  # the network's own resize is the identity at 299 px


def _corrupt(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"not a torch file")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        stored = torch.load(path, weights_only=True)
        if how == "wrong shape":
            stored["real_features"] = stored["real_features"][:, :3]
        elif how == "older format":  # version 1 had no real_labels
            stored["format"] = 1
            del stored["real_labels"]
        else:
            stored["fields"]["num_real"] += 1  # another protocol's statistics under this name
        torch.save(stored, path)


@pytest.mark.parametrize("how", ["garbage", "truncated", "wrong shape", "older format", "other fields"])
def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    datamodule, fake = RandomImages(), fake_images()
    first = make_scorer(tmp_path)
    first.setup(datamodule, CPU)
    expected = evaluate(first, fake)
    _corrupt(first.reference_path, how)

    rebuilt = make_scorer(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ganbench.cache"):
        rebuilt.setup(datamodule, CPU)
    assert "rebuilding" in caplog.text
    assert rebuilt.cache_hit is False and rebuilt.real_feature_passes > 0
    assert evaluate(rebuilt, fake) == expected
    third = make_scorer(tmp_path)
    third.setup(datamodule, CPU)
    assert third.cache_hit is True


def test_too_few_real_images_is_a_user_error(tmp_path: Path) -> None:
    scorer = make_scorer(tmp_path, num_real=40)
    with pytest.raises(UserError, match=r"has 32 images.*num_real=40"):
        scorer.setup(RandomImages(sizes={"test": 32}), CPU)


def test_inception_path_runs_offline_from_a_local_weights_file(tmp_path: Path, inception_weights: Path) -> None:
    """The real code path: torchmetrics' Inception loaded from weights_path, one forward for features and logits."""
    datamodule = RandomImages(image_size=28, sizes={"test": 4})
    scorer = make_scorer(tmp_path, weights_path=inception_weights, metrics=["is", "kid"], num_real=4, kid_subset_size=3)
    scorer.setup(datamodule, CPU)
    fake = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    result = evaluate(scorer, fake)
    assert set(result) == {"is", "is_std", "kid", "kid_std"} and all(np.isfinite(list(result.values())))
    assert result["is"] > 1.0  # Kaiming-initialised random weights give non-degenerate class probabilities

    real = torch.stack([datamodule.eval_dataset("test")[i] for i in range(4)])
    torch_fidelity = fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], inception_weights)
    with torch.no_grad():
        (expected,) = torch_fidelity(independent_uint8(real))
    cached = torch.load(scorer.reference_path, weights_only=True)
    torch.testing.assert_close(cached["real_features"], expected, rtol=1e-4, atol=1e-4)
    assert scorer.describe()["feature_network"]["resize"] == "tf1_bilinear"  # torch-fidelity's own resize, as above


@pytest.mark.parametrize("how", ["missing", "garbage"])
def test_unloadable_weights_file_is_a_user_error_with_the_fix(tmp_path: Path, how: str) -> None:
    path = tmp_path / INCEPTION_WEIGHTS_FILE
    if how == "garbage":
        path.write_bytes(b"not a state dict")
    scorer = InceptionScorer(weights_path=path, cache_dir=tmp_path)  # instantiating needs no weights
    with pytest.raises(UserError) as error:
        scorer.setup(RandomImages(), CPU)
    message = str(error.value)
    for needed in (str(path), INCEPTION_WEIGHTS_FILE, PYTORCH_FID_WEIGHTS_FILE, "$TORCH_HOME/hub/checkpoints"):
        assert needed in message
    assert "eval.scorers.inception.weights_path=" in message


def test_no_weights_and_no_network_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", offline)
    with pytest.raises(UserError, match="weights_path=") as error:
        InceptionV3Features()
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE) in str(error.value)


def test_bad_settings_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="choose one or more of"):
        make_scorer(tmp_path, metrics=["fid", "precision"])
    with pytest.raises(UserError, match="kid_subset_size"):
        make_scorer(tmp_path, kid_subset_size=NUM_REAL + 1)
    with pytest.raises(UserError, match="applies to the default Inception"):
        InceptionScorer(weights_path="w.pth", feature_network=TinyFeatures())


def test_config_composes_and_keeps_weights_out_of_checkpoints(make_config, tmp_path: Path) -> None:
    cfg = make_config(
        "eval=inception",
        f"data_root={tmp_path}",
        "eval.scorers.inception.feature_network={_target_: tests.helpers.inception.TinyFeatures}",
    )
    evaluation: Evaluation = instantiate(cfg.eval)
    scorer = evaluation.scorers["inception"]
    assert isinstance(scorer, InceptionScorer) and isinstance(scorer.network, TinyFeatures)
    assert scorer.cache.cache_dir == tmp_path / "reference_stats"
    assert (evaluation.primary, evaluation.higher_is_better, evaluation.num_samples) == ("fid", False, 10000)
    assert scorer.split == "test" and scorer.num_real == 10000 and scorer.resize == "tf1_bilinear"
    # The scorer lives in the callback, whose checkpoint state holds no tensors; it is no nn.Module that a
    # LightningModule could adopt as a submodule.
    assert not _holds_tensors(evaluation.state_dict()) and not isinstance(scorer, nn.Module)


def _holds_tensors(state: Any) -> bool:
    if isinstance(state, dict):
        return any(_holds_tensors(value) for value in state.values())
    if isinstance(state, list | tuple):
        return any(_holds_tensors(value) for value in state)
    return isinstance(state, Tensor | nn.Module)


def _load_script(name: str) -> Any:
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_precompute_script_fills_the_cache_from_real_mnist_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real MNIST loader on IDX files with 4 test images; the second call finds what the first wrote."""
    write_mnist_like(tmp_path, "MNIST")
    script = _load_script("precompute_reference")
    overrides = [
        "dataset=mnist",
        f"data_root={tmp_path}",
        "eval.scorers.inception.num_real=4",
        "eval.scorers.inception.kid_subset_size=2",
        "eval.scorers.inception.feature_network={_target_: tests.helpers.inception.TinyFeatures}",
    ]
    assert script.main(overrides) == 0
    assert script.main(overrides) == 0
    wrote, found = capsys.readouterr().out.splitlines()
    cache = tmp_path / "reference_stats"
    (path,) = cache.glob("mnist-test-28px-1ch-*.pt")
    assert wrote == f"inception: wrote {path} (mnist-test-28px-1ch, 4 images)"
    assert found == wrote.replace("wrote", "found")

    assert script.main([*overrides, "eval.scorers.inception.num_real=5"]) == 2
    assert "fewer than eval.scorers.inception.num_real=5" in capsys.readouterr().err


# --- DDP: 2 gloo processes must give the 1-process FID -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: Path, fake: Tensor, labels: Tensor) -> None:
    """One rank: cold cache (rank 0 builds it), uneven chunk counts per rank, two evaluations; every metric (a
    conditional G's samples, so that intra_fid runs too)."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    try:
        scorer = make_scorer(out_dir / "cache", metrics=ALL_METRICS)
        scorer.setup(RandomImages(num_classes=NUM_CLASSES), CPU, rank, world_size)
        mine, my_labels = fake[rank::world_size], labels[rank::world_size]  # as Evaluation.rank_latents splits them
        rounds = [evaluate(scorer, mine, chunk=4 if rank == 0 else 8, labels=my_labels) for _ in range(2)]
        (out_dir / f"rank{rank}.json").write_text(json.dumps(rounds))
    finally:
        dist.destroy_process_group()


def _spawn(
    world_size: int, out_dir: Path, fake: Tensor, labels: Tensor, timeout: float = 180
) -> list[list[dict[str, float]]]:
    arguments = (world_size, _free_port(), out_dir, fake, labels)
    context = mp.spawn(_ddp_worker, args=arguments, nprocs=world_size, join=False)
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"DDP workers did not finish within {timeout} s")
    return [json.loads((out_dir / f"rank{rank}.json").read_text()) for rank in range(world_size)]


@pytest.mark.slow
def test_two_process_fid_equals_one_process_fid(tmp_path: Path) -> None:
    fake, labels = fake_images(30), balanced_labels(30)
    single = make_scorer(tmp_path / "single", metrics=ALL_METRICS)
    single.setup(RandomImages(num_classes=NUM_CLASSES), CPU)
    expected = evaluate(single, fake, labels=labels)

    ranks = _spawn(2, tmp_path, fake, labels)  # with 2 classes, rank 0 generates class 0 only and rank 1 class 1
    for rounds in ranks:
        for result in rounds:
            # real statistics counted once; each rank's features come from other batch shapes: float32 rounding
            assert result["fid"] == pytest.approx(expected["fid"], rel=CHUNKING_REL)
            for nearest_neighbour in ("ipr_precision", "ipr_recall", "density", "coverage"):  # all ranks' samples
                assert result[nearest_neighbour] == pytest.approx(expected[nearest_neighbour])
            for intra in ("intra_fid", "intra_fid/0", "intra_fid/1"):  # rank 0's real classes, all ranks' samples
                assert result[intra] == pytest.approx(expected[intra], rel=CHUNKING_REL)
            assert all(np.isfinite(list(result.values())))
    assert ranks[0] == ranks[1]  # every rank computes the same synced scores (KID/IS: same seeded subsets)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # built by rank 0 only
