"""The image protocol's scorer: FID, Inception Score, KID, improved precision / recall, density / coverage and the
intra-class FID from one shared feature network (docs/evaluation.md).

Each image goes through the network (:mod:`ganbench.metrics.feature_networks`) once; the torchmetrics metrics
receive the features, not the images (their own ``feature`` network is a pass-through), so the Inception weights
live only here — in the Evaluation callback, never in the LightningModule or its checkpoints. Real statistics come
from the on-disk cache of :mod:`ganbench.metrics.reference` and are loaded into the metric states directly
(torchmetrics has no API for it).

DDP: every rank runs every method. The real statistics sit on rank 0 only (zeros and an empty feature set
elsewhere): torchmetrics sums FID's states and concatenates KID's features across ranks at compute, so loading the
full statistics on every rank would count them once per rank. Generated features are handed to the metrics in one
update per rank and evaluation, because torchmetrics gathers list states element by element and ranks with
different numbers of chunks would otherwise deadlock. The metrics computed here rather than by torchmetrics
(precision / recall, density / coverage, intra-FID) gather rank 0's real features and every rank's generated ones to
every rank, so that every rank returns the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from torchmetrics import Metric
from torchmetrics.aggregation import SumMetric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.distributed import gather_all_tensors

from ganbench.data.images import ImageDataModule
from ganbench.errors import UserError
from ganbench.metrics.feature_networks import (
    IMAGE_TO_NETWORK,
    OVERRIDE,
    InceptionV3Features,
    Resize,
    check_resize,
    extract_features,
    network_identity,
)
from ganbench.metrics.prdc import density_coverage, precision_recall
from ganbench.metrics.reference import ReferenceCache, ReferenceStats, reference_key

OUTPUTS = {  # metric → its result keys
    "fid": ("fid",),
    "is": ("is", "is_std"),
    "kid": ("kid", "kid_std"),
    "ipr": ("ipr_precision", "ipr_recall"),  # improved precision and recall (ganbench.metrics.prdc)
    "dc": ("density", "coverage"),
    "intra_fid": ("intra_fid",),  # the mean over the classes; intra_fid/<k> per class (intra_fid below)
}
METRICS = tuple(OUTPUTS)
DEFAULT_METRICS = ("fid", "is", "kid")  # conf/eval/inception.yaml's; the others are opt-in
REAL_FEATURE_METRICS = {"ipr", "dc", "intra_fid"}  # those that need the real features themselves, not FID's sums
DISTANCE_NAMES = {"fid": "fd", "kid": "kd", "intra_fid": "intra_fd"}  # without Inception, no "I" (dgm-eval's naming)


class _Precomputed(nn.Module):
    """Stands in for a metric's own network: the scorer runs the shared network once and passes the features in."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def check_settings(
    metrics: Sequence[str], num_real: int, kid_subset_size: int, custom_network: bool, weights_path: object
) -> None:
    """Refuse a protocol that cannot run at construction, before any network or data is loaded."""
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise UserError(f"{OVERRIDE}.metrics={list(metrics)}: choose one or more of {list(METRICS)}")
    if "kid" in metrics and kid_subset_size > num_real:
        raise UserError(f"{OVERRIDE}.kid_subset_size={kid_subset_size} exceeds num_real={num_real}: lower it")
    if custom_network and weights_path is not None:
        raise UserError(
            f"{OVERRIDE}.weights_path applies to the default Inception network only; a custom feature_network "
            "loads its own weights: drop one of the two"
        )


def check_network(network: nn.Module, name: str, metrics: Sequence[str]) -> None:
    """The feature network gives what the metrics need: its feature width, and class logits for IS."""
    if not isinstance(getattr(network, "num_features", None), int):
        raise UserError(f"the feature network {name} needs an int attribute num_features")
    if "is" in metrics and not getattr(network, "num_logits", 0):
        raise UserError(
            f"the Inception Score needs class logits, which {name} does not give (num_logits): "
            f"drop 'is' from {OVERRIDE}.metrics"
        )


def build_metrics(
    metrics: Sequence[str], network: nn.Module, kid_subsets: int, kid_subset_size: int, is_splits: int
) -> dict[str, Metric]:
    """The torchmetrics metrics, fed the shared network's features; FID and KID keep their real states on reset."""
    dims = network.num_features
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
        built: dict[str, Metric] = {}
        if "fid" in metrics:
            built["fid"] = FrechetInceptionDistance(feature=_Precomputed(dims), reset_real_features=False)
        if "kid" in metrics:
            built["kid"] = KernelInceptionDistance(
                feature=_Precomputed(dims), subsets=kid_subsets, subset_size=kid_subset_size, reset_real_features=False
            )
        if "is" in metrics:
            built["is"] = InceptionScore(feature=_Precomputed(network.num_logits), splits=is_splits)
    return built


def set_real_states(metrics: dict[str, Metric], stats: ReferenceStats, device: torch.device) -> None:
    """Load the real statistics into FID's and KID's states, as their own updates with real=True would leave them."""
    if "fid" in metrics:
        fid = metrics["fid"]
        fid.real_features_sum = stats.real_features_sum.to(device)
        fid.real_features_cov_sum = stats.real_features_cov_sum.to(device)
        fid.real_features_num_samples = torch.tensor(stats.real_features_num_samples, device=device)
    if "kid" in metrics:
        metrics["kid"].real_features = [stats.real_features.to(device, torch.float64)]


def take(chunks: list[Tensor], *shape: int, device: torch.device, dtype: torch.dtype = torch.float64) -> Tensor:
    """This rank's chunks as one tensor (empty, of ``shape`` per sample, if the rank got no samples); the chunks are
    released."""
    taken = torch.cat(chunks) if chunks else torch.empty(0, *shape, dtype=dtype, device=device)
    chunks.clear()
    return taken


def on_every_rank(features: Tensor) -> Tensor:
    """Every rank's features concatenated, on every rank (uneven sizes allowed); the tensor itself in one process."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return features
    return torch.cat(gather_all_tensors(features))


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two feature sets (N, D), in float64: ‖μr − μf‖² + tr Σr + tr Σf − 2 tr (Σr Σf)^½, with the unbiased
    (N − 1) covariances of torchmetrics and pytorch-fid.

    tr (Σr Σf)^½ is the sum of the singular values of Ar Afᵀ / √((Nr − 1)(Nf − 1)), A being the centred features:
    Σr Σf's nonzero eigenvalues are that matrix's squared singular values. It is exact, and for a class with fewer
    samples than feature dimensions (1,000 < 2,048) about ten times faster than the eigenvalues of the D × D product.
    """
    real, fake = real.double(), fake.double()
    centred_real, centred_fake = real - real.mean(dim=0), fake - fake.mean(dim=0)
    scale = ((len(real) - 1) * (len(fake) - 1)) ** 0.5
    root_trace = torch.linalg.svdvals(centred_real @ centred_fake.t() / scale).sum()
    traces = centred_real.square().sum() / (len(real) - 1) + centred_fake.square().sum() / (len(fake) - 1)
    mean_gap = (real.mean(dim=0) - fake.mean(dim=0)).square().sum()
    return (mean_gap + traces - 2 * root_trace).item()


def intra_fid(
    real: Tensor, real_labels: Tensor, fake: Tensor, fake_labels: Tensor, num_classes: int
) -> dict[str, float]:
    """The intra-class FID (Miyato & Koyama 2018): ``intra_fid/<k>`` is the FID between the real features of class k
    and the features of the samples generated for class k, ``intra_fid`` its mean over the classes."""
    real_counts = torch.bincount(real_labels, minlength=num_classes).tolist()
    fake_counts = torch.bincount(fake_labels, minlength=num_classes).tolist()
    for k in range(num_classes):
        if real_counts[k] < 2 or fake_counts[k] < 2:
            raise UserError(
                f"intra_fid: class {k} has {real_counts[k]} real and {fake_counts[k]} generated samples, and a "
                f"class's FID needs at least 2 of each: raise eval.num_samples (generated) or {OVERRIDE}.num_real "
                "(real)"
            )
    per_class = [frechet_distance(real[real_labels == k], fake[fake_labels == k]) for k in range(num_classes)]
    return {"intra_fid": sum(per_class) / num_classes} | {f"intra_fid/{k}": fid for k, fid in enumerate(per_class)}


def named_for_network(results: dict[str, float], suffix: str | None) -> dict[str, float]:
    """The result keys named after a feature network with a ``metric_suffix`` ("dinov2"), so that no FD on DINOv2
    features is logged as an FID: ``fid`` → ``fd_dinov2``, ``kid_std`` → ``kd_dinov2_std``, ``density`` →
    ``density_dinov2``, ``intra_fid/3`` → ``intra_fd_dinov2/3``; unchanged without a suffix."""
    if not suffix:
        return results
    renamed = {}
    for key, value in results.items():
        head, slash, tail = key.partition("/")
        stem, std = (head.removesuffix("_std"), "_std") if head.endswith("_std") else (head, "")
        renamed[f"{DISTANCE_NAMES.get(stem, stem)}_{suffix}{std}{slash}{tail}"] = value
    return renamed


def scores(name: str, metric: Metric, kid_subset_size: int) -> dict[str, float]:
    """A computed metric's result keys (OUTPUTS): the value, and the standard deviation for IS and KID."""
    if name == "fid":
        return {"fid": metric.compute().item()}
    try:
        mean, std = metric.compute()
    except ValueError as error:  # KID with fewer samples than one subset
        raise UserError(
            f"KID: {error} ({OVERRIDE}.kid_subset_size={kid_subset_size}): lower it or raise eval.num_samples"
        ) from error
    return {name: mean.item(), f"{name}_std": std.item()}


class InceptionScorer:
    """FID / IS / KID (and the opt-in metrics of OUTPUTS) of the generated samples against the first ``num_real``
    images of ``split``; ``intra_fid`` compares each class's samples with that class's real images.

    ``feature_network`` (a Hydra node with ``_target_``) replaces the default Inception; it takes uint8 images
    (N, 3, H, W), returns ``Features`` (:mod:`ganbench.metrics.feature_networks`) and has ``num_features`` (and
    ``num_logits`` for IS; a ``metric_suffix`` renames the result keys, ``named_for_network``). Given as a factory
    (``_partial_: true``, as conf/eval/dinov2.yaml does) it is built in ``setup``, like the default Inception.
    ``weights_path`` and ``resize`` configure the default Inception only, which is loaded in ``setup`` (so that
    configs instantiate without the weights, and DDP-spawn does not pickle them). KID's subsets and IS's splits are
    drawn with ``seed``, so two evaluations of the same samples agree.
    """

    def __init__(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        split: str = "test",
        num_real: int = 10000,
        real_batch_size: int = 100,
        cache_dir: str | Path = "data/reference_stats",
        weights_path: str | Path | None = None,
        resize: Resize = "tf1_bilinear",
        feature_network: nn.Module | Callable[[], nn.Module] | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        ipr_k: int = 3,
        dc_k: int = 5,
        seed: int = 0,
    ) -> None:
        self.metrics = tuple(metrics)
        self.split = split
        self.num_real = num_real
        self.real_batch_size = real_batch_size
        self.cache = ReferenceCache(cache_dir)
        self.weights_path = weights_path
        self.resize = resize
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.is_splits = is_splits
        self.ipr_k = ipr_k
        self.dc_k = dc_k
        self.seed = seed
        check_settings(self.metrics, num_real, kid_subset_size, feature_network is not None, weights_path)
        check_resize(resize)
        self.network: nn.Module | Callable[[], nn.Module] | None = feature_network
        self.network_id: dict[str, Any] | None = None
        self._metrics: dict[str, Metric] = {}
        self._nonfinite = SumMetric(nan_strategy="disable")
        self._pools: list[Tensor] = []
        self._logits: list[Tensor] = []
        self._labels: list[Tensor] = []  # the classes of this rank's samples, for intra_fid
        self._nonfinite_count = 0
        # Rank 0's copy of the cached real features and their classes, kept only for REAL_FEATURE_METRICS.
        self._real_features = torch.empty(0)
        self._real_labels = torch.empty(0, dtype=torch.int64)
        self.num_classes: int | None = None  # the datamodule's, set by setup
        self.device: torch.device | None = None
        # Set by setup: which real statistics this run uses, where they are cached, whether rank 0 found them there.
        self.reference_id: str | None = None
        self.reference_key: str | None = None
        self.reference_path: Path | None = None
        self.cache_hit: bool | None = None
        self.real_feature_passes = 0  # batches of real images through the network (stays 0 on a cache hit)

    def _load_network(self) -> nn.Module:
        """The feature network (the default Inception is loaded on first use), checked against the metrics."""
        if self.network is None:
            self.network = InceptionV3Features(self.weights_path, self.resize)
        elif not isinstance(self.network, nn.Module):  # a factory: its weights load here, not at instantiation
            self.network = self.network()
        if self.network_id is None:
            self.network.eval()
            self.network_id = network_identity(self.network)
            check_network(self.network, self.network_id["class"], self.metrics)
            self._metrics = build_metrics(
                self.metrics, self.network, self.kid_subsets, self.kid_subset_size, self.is_splits
            )
        return self.network

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
        requested = {"weights_path": str(self.weights_path) if self.weights_path else None, "resize": self.resize}
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
        if "ipr" in self.metrics:
            described["ipr"] = {"k": self.ipr_k, "real": "the cached real features", "membership": "<="}
        if "dc" in self.metrics:
            described["dc"] = {"k": self.dc_k, "real": "the cached real features", "membership": "<="}
        if "intra_fid" in self.metrics:
            described["intra_fid"] = {
                "num_classes": self.num_classes,
                "real": "the cached real features of each class",
                "covariance": "unbiased (n - 1)",
                "mean": "over the classes",
            }
        if self.reference_id is not None:
            described["reference"] = {"reference_id": self.reference_id, "key": self.reference_key}
        return described

    def setup(self, datamodule: ImageDataModule, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """Load the network and, on rank 0 only, the real statistics (cached, or built and cached)."""
        if "intra_fid" in self.metrics and datamodule.num_classes is None:
            raise UserError(
                f"{OVERRIDE}.metrics has intra_fid, the FID within each class, and {datamodule.name} has no class "
                "labels: drop intra_fid or evaluate a conditional run on a labelled dataset (docs/conditional.md)"
            )
        self.num_classes = datamodule.num_classes
        self.device = torch.device(device)
        network = self._load_network().to(self.device)
        for metric in (*self._metrics.values(), self._nonfinite):
            metric.to(self.device)
        fields = self.reference_fields(datamodule)
        self.reference_id, self.reference_key = fields["reference"], reference_key(fields)
        self.reference_path = self.cache.path(self.reference_id, fields)
        if rank == 0:
            self.cache_hit = True  # until the cache has to build them
            build = partial(self._build_reference, datamodule)
            labelled = self.num_classes is not None
            stats = self.cache.load_or_build(
                self.reference_path, fields, build, self.num_real, network.num_features, labelled
            )
        else:  # see the module docstring
            stats = ReferenceStats.from_features(torch.empty(0, network.num_features))
        set_real_states(self._metrics, stats, self.device)
        if REAL_FEATURE_METRICS & set(self.metrics):
            self._real_features = stats.real_features.to(self.device, torch.float64)
        if "intra_fid" in self.metrics:
            self._real_labels = stats.real_labels.to(self.device)

    def _build_reference(self, datamodule: ImageDataModule) -> ReferenceStats:
        """Features (and, for a labelled dataset, classes) of the first ``num_real`` images of the split, in order, so
        every machine gets the same set. The classes are stored whatever the metrics: the file serves every run."""
        self.cache_hit = False
        labelled = self.num_classes is not None
        dataset = datamodule.labelled_dataset(self.split) if labelled else datamodule.eval_dataset(self.split)
        available = len(dataset)  # type: ignore[arg-type]
        if available < self.num_real:
            raise UserError(
                f"the {self.split} split of {self.reference_id} has {available} images, fewer than "
                f"{OVERRIDE}.num_real={self.num_real}: lower num_real or evaluate on a larger split"
            )
        subset = Subset(dataset, range(self.num_real))
        loader = DataLoader(subset, batch_size=self.real_batch_size, num_workers=datamodule.num_workers)
        pools, labels = [], []
        for batch in loader:
            images, classes = batch if labelled else (batch, torch.empty(0, dtype=torch.int64))
            pools.append(extract_features(self.network, images.to(self.device)).pool.cpu())
            labels.append(classes)
            self.real_feature_passes += 1
        return ReferenceStats.from_features(torch.cat(pools), torch.cat(labels))

    def reset(self) -> None:
        for metric in (*self._metrics.values(), self._nonfinite):
            metric.reset()  # FID and KID keep their real states (reset_real_features=False)
        self._pools, self._logits, self._labels, self._nonfinite_count = [], [], [], 0

    def update(self, fake: Tensor, labels: Tensor | None = None) -> None:
        """One chunk of samples, with the classes they were generated for (``labels``, used by intra_fid only)."""
        if self.device is None:
            raise RuntimeError("InceptionScorer.setup(datamodule, device) must run before update()")
        if "intra_fid" in self.metrics:
            if labels is None:  # refused at the first chunk, before any feature pass
                raise UserError(
                    f"{OVERRIDE}.metrics has intra_fid, the FID within each class, which needs a class-conditional "
                    "generator: set conditional=true or drop intra_fid"
                )
            self._labels.append(labels.to(self.device, torch.int64))
        fake = fake.to(self.device)
        self._nonfinite_count += int((~fake.isfinite()).flatten(1).any(dim=1).sum())
        features = extract_features(self.network, fake)
        self._pools.append(features.pool.double())
        if "is" in self._metrics:
            self._logits.append(features.logits.double())

    def compute(self, generator: nn.Module) -> dict[str, float]:
        """Synced over ranks; NaN for every metric when any rank saw a non-finite sample (a diverged generator). The
        keys carry the network's ``metric_suffix``, if it has one."""
        return named_for_network(self._compute(), getattr(self.network, "metric_suffix", None))

    def _compute(self) -> dict[str, float]:
        if self.device is None:
            raise RuntimeError("InceptionScorer.setup(datamodule, device) must run before compute()")
        pools = take(self._pools, self.network.num_features, device=self.device)
        logits = take(self._logits, getattr(self.network, "num_logits", 0), device=self.device)
        labels = take(self._labels, device=self.device, dtype=torch.int64)
        self._nonfinite.update(torch.tensor(float(self._nonfinite_count), device=self.device))
        if self._nonfinite.compute().item() > 0:
            keys = [output for name in self.metrics for output in OUTPUTS[name]]
            if "intra_fid" in self.metrics:
                keys += [f"intra_fid/{k}" for k in range(self.num_classes)]
            return dict.fromkeys(keys, float("nan"))
        results: dict[str, float] = {}
        if REAL_FEATURE_METRICS & set(self.metrics):  # rank 0's real features, all ranks' samples, on every rank
            real, fake = on_every_rank(self._real_features), on_every_rank(pools)
            results |= self._nearest_neighbour_scores(real, fake)
            if "intra_fid" in self.metrics:
                real_labels, fake_labels = on_every_rank(self._real_labels), on_every_rank(labels)
                results |= intra_fid(real, real_labels, fake, fake_labels, self.num_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # KID's subsets and IS's splits: the same on every rank and evaluation
            for name, metric in self._metrics.items():
                if name == "is":
                    metric.update(logits)
                else:
                    metric.update(pools, real=False)
                results |= scores(name, metric, self.kid_subset_size)
        return results

    def _nearest_neighbour_scores(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        """Precision / recall and density / coverage, those of them requested, of the samples against the real
        features."""
        results: dict[str, float] = {}
        try:
            if "ipr" in self.metrics:
                pr = precision_recall(real=real, fake=fake, k=self.ipr_k)
                results |= {"ipr_precision": pr["precision"], "ipr_recall": pr["recall"]}
            if "dc" in self.metrics:
                results |= density_coverage(real=real, fake=fake, k=self.dc_k)
        except ValueError as error:  # fewer samples than a k-NN ball needs
            raise UserError(
                f"{error} ({OVERRIDE}.ipr_k={self.ipr_k}, {OVERRIDE}.dc_k={self.dc_k}, eval.num_samples, "
                f"{OVERRIDE}.num_real)"
            ) from error
        return results
