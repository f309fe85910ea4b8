"""The image protocol's scorer: FID, Inception Score and KID from one shared feature network (docs/evaluation.md).

Each image goes through the network once; the torchmetrics metrics receive the features, not the images (their
own ``feature`` network is a pass-through), so the Inception weights live only here — in the Evaluation callback,
never in the LightningModule or its checkpoints. Real statistics come from the on-disk cache of
:mod:`ganbench.metrics.reference` and are loaded into the metric states directly (torchmetrics has no API for it).

DDP: every rank runs every method. The real statistics sit on rank 0 only (zeros and an empty feature set
elsewhere): torchmetrics sums FID's states and concatenates KID's features across ranks at compute, so loading the
full statistics on every rank would count them once per rank. Generated features are handed to the metrics in one
update per rank and evaluation, because torchmetrics gathers list states element by element and ranks with
different numbers of chunks would otherwise deadlock.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics import Metric
from torchmetrics.aggregation import SumMetric
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from ganbench.data.images import ImageDataModule
from ganbench.errors import UserError
from ganbench.metrics.reference import ReferenceCache, ReferenceStats, reference_key

log = logging.getLogger(__name__)

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity / torchmetrics
PYTORCH_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid: same network, same parameter names
IMAGE_TO_NETWORK = "clamp to [-1, 1], uint8 = round((x + 1) * 127.5), grey tiled to 3 channels"
OUTPUTS = {"fid": ("fid",), "is": ("is", "is_std"), "kid": ("kid", "kid_std")}  # metric → its result keys
METRICS = tuple(OUTPUTS)
OVERRIDE = "eval.scorers.inception"


class Features(NamedTuple):
    """What a feature network returns for a batch: features for FID/KID, class logits for IS (None if it has none)."""

    pool: Tensor
    logits: Tensor | None


def to_network_input(images: Tensor) -> Tensor:
    """Generated or real images in [−1, 1] as the uint8 RGB images the Inception network was trained on.

    Rounding (not truncation) makes real images that came from uint8 files map back to their exact pixel values.
    """
    if images.shape[1] not in (1, 3):
        raise UserError(f"the image protocol needs 1- or 3-channel images, got shape {tuple(images.shape)}")
    pixels = ((images.nan_to_num(0.0).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


def hub_weights_path() -> Path:
    """Where torch.hub (and so torchmetrics) looks for the default weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def _missing_weights(source: str, error: Exception) -> UserError:
    return UserError(
        f"cannot load the Inception weights from {source}: {type(error).__name__}: {error}. Without network the image "
        f"protocol needs the TF Inception v3 (2015-12-05) weights as a local file: download {URL_INCEPTION_V3} "
        f"elsewhere and put {INCEPTION_WEIGHTS_FILE} in $TORCH_HOME/hub/checkpoints/ (here: {hub_weights_path()}), "
        f"or pass its path with {OVERRIDE}.weights_path=/path/to/{INCEPTION_WEIGHTS_FILE} "
        f"(pytorch-fid's {PYTORCH_FID_WEIGHTS_FILE} uses the same parameter names)"
    )


class InceptionV3Features(nn.Module):
    """The TF Inception v3 of 2015-12-05 as ported by torch-fidelity (torchmetrics' FID network): one forward gives
    the 2048-d pool features (FID, KID) and the 1008 unbiased logits (IS, as torchmetrics computes it).

    ``antialias=False`` resizes to 299 like TF 1.x bilinear (the reference numbers); torchmetrics ≥ 1.8 defaults
    to an antialiased resize, which gives different scores.
    """

    num_features = 2048
    num_logits = 1008
    input_size = 299

    def __init__(self, weights_path: str | Path | None = None, antialias: bool = False) -> None:
        super().__init__()
        self.antialias = antialias
        path = Path(weights_path).expanduser() if weights_path is not None else hub_weights_path()
        offline = weights_path is not None or path.exists()  # else torch-fidelity downloads into the hub folder
        source = str(path) if offline else f"{URL_INCEPTION_V3} (no {OVERRIDE}.weights_path and no {path})"
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(path) if offline else None,
                antialias=antialias,
            )
        except Exception as error:
            raise _missing_weights(source, error) from error
        self.weights_file = path.name
        self.requires_grad_(False)

    def forward(self, images: Tensor) -> Features:
        pool, logits = self.net._torch_fidelity_forward(images)  # the public forward returns only the first output
        return Features(pool, logits)

    def describe(self) -> dict[str, Any]:
        return {
            "name": "inception-v3-compat (TF 2015-12-05, torch-fidelity port)",
            "weights_file": self.weights_file,
            "input_size": self.input_size,
            "resize": "bilinear, antialiased" if self.antialias else "bilinear, TF1-compatible",
            "antialias": self.antialias,
            "features": "pool3 (2048)",
            "logits": "logits_unbiased (1008)",
        }


def network_identity(network: nn.Module) -> dict[str, Any]:
    """Names a feature network for the cache key and the run record: its own description, class and weights hash."""
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    described = network.describe() if hasattr(network, "describe") else {}
    kind = type(network)
    return {**described, "class": f"{kind.__module__}.{kind.__qualname__}", "weights_sha256": digest.hexdigest()}


class _Precomputed(nn.Module):
    """Stands in for a metric's own network: the scorer runs the shared network once and passes the features in."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class InceptionScorer:
    """FID / IS / KID of the generated samples against the first ``num_real`` images of ``split``.

    ``feature_network`` (a Hydra node with ``_target_``) replaces the default Inception; it takes uint8 images
    (N, 3, H, W), returns :class:`Features` and has ``num_features`` (and ``num_logits`` for IS). ``weights_path``
    and ``antialias`` configure the default Inception only, which is loaded in ``setup`` (so that configs
    instantiate without the weights, and DDP-spawn does not pickle them). KID's subsets and IS's splits are drawn
    with ``seed``, so two evaluations of the same samples agree.
    """

    def __init__(
        self,
        metrics: Sequence[str] = METRICS,
        split: str = "test",
        num_real: int = 10000,
        real_batch_size: int = 100,
        cache_dir: str | Path = "data/reference_stats",
        weights_path: str | Path | None = None,
        antialias: bool = False,
        feature_network: nn.Module | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        seed: int = 0,
    ) -> None:
        self.metrics = tuple(metrics)
        self.split = split
        self.num_real = num_real
        self.real_batch_size = real_batch_size
        self.cache = ReferenceCache(cache_dir)
        self.weights_path = weights_path
        self.antialias = antialias
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.is_splits = is_splits
        self.seed = seed
        self._check_settings(feature_network)
        self.network: nn.Module | None = feature_network
        self.network_id: dict[str, Any] | None = None
        self._metrics: dict[str, Metric] = {}
        self._nonfinite = SumMetric(nan_strategy="disable")
        self._pools: list[Tensor] = []
        self._logits: list[Tensor] = []
        self._nonfinite_count = 0
        self.device: torch.device | None = None
        # Set by setup: which real statistics this run uses, where they are cached, whether rank 0 found them there.
        self.reference_id: str | None = None
        self.reference_key: str | None = None
        self.reference_path: Path | None = None
        self.cache_hit: bool | None = None
        self.real_feature_passes = 0  # batches of real images through the network (stays 0 on a cache hit)

    def _check_settings(self, feature_network: nn.Module | None) -> None:
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown or not self.metrics:
            raise UserError(f"{OVERRIDE}.metrics={list(self.metrics)}: choose one or more of {list(METRICS)}")
        if "kid" in self.metrics and self.kid_subset_size > self.num_real:
            raise UserError(
                f"{OVERRIDE}.kid_subset_size={self.kid_subset_size} exceeds num_real={self.num_real}: lower it"
            )
        if feature_network is not None and self.weights_path is not None:
            raise UserError(
                f"{OVERRIDE}.weights_path applies to the default Inception network only; a custom feature_network "
                "loads its own weights: drop one of the two"
            )

    def _load_network(self) -> nn.Module:
        """The feature network (the default Inception is loaded on first use), checked against the metrics."""
        if self.network is None:
            self.network = InceptionV3Features(self.weights_path, self.antialias)
        if self.network_id is None:
            self.network.eval()
            self.network_id = network_identity(self.network)
            name = self.network_id["class"]
            if not isinstance(getattr(self.network, "num_features", None), int):
                raise UserError(f"the feature network {name} needs an int attribute num_features")
            if "is" in self.metrics and not getattr(self.network, "num_logits", 0):
                raise UserError(
                    f"the Inception Score needs class logits, which {name} does not give (num_logits): "
                    f"drop 'is' from {OVERRIDE}.metrics"
                )
            self._metrics = self._build_metrics(self.network)
        return self.network

    def _build_metrics(self, network: nn.Module) -> dict[str, Metric]:
        dims = network.num_features
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
            built: dict[str, Metric] = {}
            if "fid" in self.metrics:
                built["fid"] = FrechetInceptionDistance(feature=_Precomputed(dims), reset_real_features=False)
            if "kid" in self.metrics:
                built["kid"] = KernelInceptionDistance(
                    feature=_Precomputed(dims),
                    subsets=self.kid_subsets,
                    subset_size=self.kid_subset_size,
                    reset_real_features=False,
                )
            if "is" in self.metrics:
                built["is"] = InceptionScore(feature=_Precomputed(network.num_logits), splits=self.is_splits)
        return built

    def reference_fields(self, datamodule: ImageDataModule) -> dict[str, Any]:
        """Everything that changes the real statistics; its hash is the cache key."""
        self._load_network()
        return {
            "reference": datamodule.reference_id(self.split),
            "split": self.split,
            "num_real": self.num_real,
            "image_to_network": IMAGE_TO_NETWORK,
            "feature_network": self.network_id,
        }

    def describe(self) -> dict[str, Any]:
        """The protocol as run, for the run record; complete after ``setup`` (before it, the feature network is
        given by its settings). The generated sample count and latent seed are the Evaluation's."""
        requested = {"weights_path": str(self.weights_path) if self.weights_path else None, "antialias": self.antialias}
        described: dict[str, Any] = {
            "metrics": list(self.metrics),
            "real_split": self.split,
            "num_real": self.num_real,
            "image_to_network": IMAGE_TO_NETWORK,
            "feature_network": self.network_id or requested,
            "seed": self.seed,
        }
        if "kid" in self.metrics:
            described["kid"] = {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size, "degree": 3}
        if "is" in self.metrics:
            described["is"] = {"splits": self.is_splits}
        if self.reference_id is not None:
            described["reference"] = {"reference_id": self.reference_id, "key": self.reference_key}
        return described

    def setup(self, datamodule: ImageDataModule, device: torch.device) -> None:
        self.device = torch.device(device)
        self._load_network().to(self.device)
        for metric in (*self._metrics.values(), self._nonfinite):
            metric.to(self.device)
        fields = self.reference_fields(datamodule)
        self.reference_id, self.reference_key = fields["reference"], reference_key(fields)
        self.reference_path = self.cache.path(self.reference_id, fields)
        stats = self._load_or_build_reference(datamodule, fields, self.reference_path) if _rank() == 0 else None
        self._set_real_states(stats)

    def _load_or_build_reference(
        self, datamodule: ImageDataModule, fields: dict[str, Any], path: Path
    ) -> ReferenceStats:
        """Cached real statistics, or computed from the real images and cached for the next run."""
        stats = self.cache.load(path, fields, self.num_real, self.network.num_features)
        self.cache_hit = stats is not None
        if stats is None:
            stats = self._compute_reference(datamodule)
            self.cache.save(path, fields, stats)
            log.info("cached the reference statistics of %s in %s", self.reference_id, path)
        return stats

    def _compute_reference(self, datamodule: ImageDataModule) -> ReferenceStats:
        """Features of the first ``num_real`` images of the split, in order, so every machine gets the same set."""
        dataset = datamodule.eval_dataset(self.split)
        available = len(dataset)  # type: ignore[arg-type]
        if available < self.num_real:
            raise UserError(
                f"the {self.split} split of {self.reference_id} has {available} images, fewer than "
                f"{OVERRIDE}.num_real={self.num_real}: lower num_real or evaluate on a larger split"
            )
        subset = Subset(dataset, range(self.num_real))
        loader = DataLoader(subset, batch_size=self.real_batch_size, num_workers=datamodule.num_workers)
        pools = []
        for images in loader:
            pools.append(self._features(images.to(self.device)).pool.cpu())
            self.real_feature_passes += 1
        return ReferenceStats.from_features(torch.cat(pools))

    def _set_real_states(self, stats: ReferenceStats | None) -> None:
        """Rank 0 holds the real statistics, the other ranks none (see the module docstring)."""
        if stats is None:
            stats = ReferenceStats.from_features(torch.empty(0, self.network.num_features))
        if "fid" in self._metrics:
            fid = self._metrics["fid"]
            fid.real_features_sum = stats.real_features_sum.to(self.device)
            fid.real_features_cov_sum = stats.real_features_cov_sum.to(self.device)
            fid.real_features_num_samples = torch.tensor(stats.real_features_num_samples, device=self.device)
        if "kid" in self._metrics:
            self._metrics["kid"].real_features = [stats.real_features.to(self.device, torch.float64)]

    def reset(self) -> None:
        for metric in (*self._metrics.values(), self._nonfinite):
            metric.reset()  # FID and KID keep their real states (reset_real_features=False)
        self._pools, self._logits, self._nonfinite_count = [], [], 0

    @torch.no_grad()
    def _features(self, images: Tensor) -> Features:
        """One forward, in full precision whatever the training precision (bf16 features give a bf16 FID)."""
        with torch.autocast(images.device.type, enabled=False):
            return self.network(to_network_input(images))

    def update(self, fake: Tensor) -> None:
        if self.device is None:
            raise RuntimeError("InceptionScorer.setup(datamodule, device) must run before update()")
        fake = fake.to(self.device)
        self._nonfinite_count += int((~fake.isfinite()).flatten(1).any(dim=1).sum())
        features = self._features(fake)
        self._pools.append(features.pool.double())
        if "is" in self._metrics:
            self._logits.append(features.logits.double())

    def compute(self, generator: nn.Module) -> dict[str, float]:
        """Synced over ranks; NaN for every metric when any rank saw a non-finite sample (a diverged generator)."""
        if self.device is None:
            raise RuntimeError("InceptionScorer.setup(datamodule, device) must run before compute()")
        pools = self._take(self._pools, self.network.num_features)
        logits = self._take(self._logits, getattr(self.network, "num_logits", 0))
        self._nonfinite.update(torch.tensor(float(self._nonfinite_count), device=self.device))
        if self._nonfinite.compute().item() > 0:
            return {output: float("nan") for name in self._metrics for output in OUTPUTS[name]}
        results: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # KID's subsets and IS's splits: the same on every rank and evaluation
            for name, metric in self._metrics.items():
                if name == "is":
                    metric.update(logits)
                else:
                    metric.update(pools, real=False)
                results |= self._scores(name, metric)
        return results

    def _take(self, chunks: list[Tensor], width: int) -> Tensor:
        """This rank's features as one tensor (empty if the rank got no samples); the chunks are released."""
        taken = torch.cat(chunks) if chunks else torch.empty(0, width, dtype=torch.float64, device=self.device)
        chunks.clear()
        return taken

    def _scores(self, name: str, metric: Metric) -> dict[str, float]:
        if name == "fid":
            return {"fid": metric.compute().item()}
        try:
            mean, std = metric.compute()
        except ValueError as error:  # KID with fewer samples than one subset
            raise UserError(
                f"KID: {error} ({OVERRIDE}.kid_subset_size={self.kid_subset_size}): lower it or raise eval.num_samples"
            ) from error
        return {name: mean.item(), f"{name}_std": std.item()}
