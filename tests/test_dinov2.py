"""FD-DINOv2 (docs/evaluation.md, conf/eval/dinov2.yaml): the DINOv2 feature network's real loading and forward path
on a tiny random-weight ViT written at the 518-px layout of the real checkpoints, dgm-eval's preprocessing, the
renamed result keys and the missing-weights error. Nothing is downloaded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision.transforms as TF
from hydra.utils import instantiate
from PIL import Image
from safetensors.torch import load_file
from timm.layers import resample_abs_pos_embed

from ganbench.errors import UserError
from ganbench.metrics.feature_networks import IMAGENET_MEAN, IMAGENET_STD, DINOv2Features, extract_features
from ganbench.metrics.inception import InceptionScorer, named_for_network
from tests.helpers.inception import TINY_DINOV2, RandomImages, write_random_dinov2_weights

CPU = torch.device("cpu")
NUM_REAL = 32
WIDTH = TINY_DINOV2["embed_dim"]


@pytest.fixture(scope="session")
def dinov2_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_dinov2_weights(tmp_path_factory.mktemp("dinov2") / "model.safetensors")


def tiny_network(weights: Path | None) -> DINOv2Features:
    return DINOv2Features(weights_path=weights, **TINY_DINOV2)


def test_loads_the_518_px_checkpoint_at_224_px_and_gives_cls_features(dinov2_weights: Path, tmp_path: Path) -> None:
    network = tiny_network(dinov2_weights)
    saved = load_file(str(dinov2_weights))
    assert saved["pos_embed"].shape == (1, 37 * 37 + 1, WIDTH)  # the real checkpoints' grid
    expected = resample_abs_pos_embed(saved["pos_embed"], [16, 16], antialias=False)  # 224 / 14 = 16
    assert torch.equal(network.net.pos_embed, expected)
    assert torch.equal(network.net.blocks[1].mlp.fc2.weight, saved["blocks.1.mlp.fc2.weight"])
    grey = torch.rand(3, 1, 28, 28) * 2 - 1  # the scorer's path: [−1, 1] images, grey tiled to RGB
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    features = extract_features(network, grey)
    assert features.pool.shape == (3, WIDTH) and features.logits is None and features.pool.isfinite().all()
    assert network(rgb).pool.shape == (2, network.num_features) == (2, WIDTH)
    pth = tmp_path / "model.pth"  # the torch.save(state_dict) route gives the same network
    torch.save(saved, pth)
    assert torch.equal(tiny_network(pth)(rgb).pool, network(rgb).pool)


def test_preprocessing_is_dgm_evals_torchvision_transform(dinov2_weights: Path) -> None:
    """dgm-eval: PIL image → Resize((224, 224), BICUBIC) → ToTensor → Normalize(ImageNet). PyTorch's uint8 bicubic
    rounds differently from PIL's in about 0.4 % of the pixels of uniform noise, by one (rarely two) grey levels."""
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    dgm_eval = TF.Compose(
        [TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor(), TF.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    reference = dgm_eval(Image.fromarray(image[0].permute(1, 2, 0).numpy()))
    ours = tiny_network(dinov2_weights).preprocess(image)[0]
    assert ours.shape == reference.shape == (3, 224, 224)
    gap = (ours - reference).abs() * torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255  # in grey levels
    assert gap.max() <= 2 + 1e-4 and (gap > 1e-4).float().mean() < 1e-2


def test_scorer_names_the_results_after_dinov2_and_computes_them_on_its_features(
    dinov2_weights: Path, tmp_path: Path
) -> None:
    datamodule = RandomImages()
    fake = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    scorer = InceptionScorer(
        metrics=["fid", "kid", "ipr", "dc"],
        num_real=NUM_REAL,
        real_batch_size=16,
        cache_dir=tmp_path,
        feature_network=tiny_network(dinov2_weights),
        kid_subsets=5,
        kid_subset_size=12,
    )
    scorer.setup(datamodule, CPU)
    scorer.reset()
    scorer.update(fake)
    result = scorer.compute(torch.nn.Identity())
    assert set(result) == {
        "fd_dinov2",
        "kd_dinov2",
        "kd_dinov2_std",
        "ipr_precision_dinov2",
        "ipr_recall_dinov2",
        "density_dinov2",
        "coverage_dinov2",
    }
    network = tiny_network(dinov2_weights)
    real = torch.stack([datamodule.eval_dataset("test")[i] for i in range(NUM_REAL)])
    real_features, fake_features = (extract_features(network, x).pool.double().numpy() for x in (real, fake))
    mu1, mu2 = real_features.mean(axis=0), fake_features.mean(axis=0)
    sigma1, sigma2 = np.cov(real_features, rowvar=False), np.cov(fake_features, rowvar=False)
    fid = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * scipy.linalg.sqrtm(sigma1 @ sigma2).real)
    assert result["fd_dinov2"] == pytest.approx(fid, rel=1e-4)
    assert scorer.network_id["metric_suffix"] == "dinov2" and scorer.network_id["input_size"] == 224


def test_result_keys_are_renamed_by_one_rule() -> None:
    results = {"fid": 1.0, "kid_std": 2.0, "coverage": 3.0, "intra_fid": 4.0, "intra_fid/3": 5.0}
    assert named_for_network(results, None) == results
    assert named_for_network(results, "dinov2") == {
        "fd_dinov2": 1.0,
        "kd_dinov2_std": 2.0,
        "coverage_dinov2": 3.0,
        "intra_fd_dinov2": 4.0,
        "intra_fd_dinov2/3": 5.0,
    }


def test_missing_or_bad_weights_are_one_user_error_with_the_fix(dinov2_weights: Path, tmp_path: Path) -> None:
    fix = "huggingface-cli download timm/vit_large_patch14_dinov2.lvd142m model.safetensors"
    with pytest.raises(UserError, match=r"no eval\.scorers\.inception\.feature_network\.weights_path") as error:
        DINOv2Features()
    assert fix in str(error.value)
    absent = tmp_path / "absent.safetensors"
    with pytest.raises(UserError, match=r"feature_network\.weights_path=") as error:
        DINOv2Features(weights_path=absent)
    assert str(absent) in str(error.value) and fix in str(error.value)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=f"cannot load the DINOv2 weights from {re.escape(str(corrupt))}"):
        DINOv2Features(weights_path=corrupt)
    with pytest.raises(UserError, match="size mismatch"):  # the tiny file for a ViT-L
        DINOv2Features(weights_path=dinov2_weights)
    with pytest.raises(UserError, match="is not a timm DINOv2 ViT"):
        DINOv2Features(model="vit_base_patch16_224", weights_path=corrupt)


def test_protocol_composes_and_instantiates_without_the_weights(make_config, dinov2_weights: Path, tmp_path) -> None:
    node = "eval.scorers.inception.feature_network"
    cfg = make_config("dataset=mnist", "eval=dinov2", f"data_root={tmp_path}")
    evaluation = instantiate(cfg.eval)
    scorer = evaluation.scorers["inception"]
    assert (evaluation.primary, evaluation.higher_is_better) == ("fd_dinov2", False)
    assert cfg.eval.scorers.inception.feature_network.model == "vit_large_patch14_dinov2"
    with pytest.raises(UserError, match=r"no eval\.scorers\.inception\.feature_network\.weights_path"):
        scorer._load_network()  # what setup does first
    tiny = [f"{node}.model={TINY_DINOV2['model']}", f"{node}.weights_path={dinov2_weights}"]
    tiny += [f"+{node}.{key}={TINY_DINOV2[key]}" for key in ("embed_dim", "depth", "num_heads")]
    cfg = make_config("dataset=mnist", "eval=dinov2", f"data_root={tmp_path}", *tiny)
    network = instantiate(cfg.eval).scorers["inception"]._load_network()
    assert isinstance(network, DINOv2Features) and network.num_features == WIDTH
