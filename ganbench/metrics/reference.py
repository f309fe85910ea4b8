"""Real-image statistics of the image protocol, computed once per protocol and cached on disk.

A reference file holds what FID and KID need from the real images — FID's float64 sums (Σx, Σxxᵀ, n) and the real
features KID draws its subsets from, with each feature's class for the intra-class FID — so that a run pays only for
its generated samples. The file is keyed by a
hash of everything that changes those numbers (see ``InceptionScorer.reference_fields``) and stores the fields
themselves, so a stale or corrupt file is detected on load and rebuilt instead of silently used.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganbench.cache import load_or_build

FORMAT_VERSION = 2  # 2: real_labels


@dataclass
class ReferenceStats:
    """FID's real states (names as in torchmetrics' ``FrechetInceptionDistance``), KID's real features and their
    classes (empty for a dataset without labels)."""

    real_features_sum: Tensor  # (D,) float64
    real_features_cov_sum: Tensor  # (D, D) float64
    real_features_num_samples: int
    real_features: Tensor  # (N, D), the network's dtype
    real_labels: Tensor  # (N,) int64, the class of each real feature in the same order; (0,) without labels

    @classmethod
    def from_features(cls, features: Tensor, labels: Tensor | None = None) -> ReferenceStats:
        """The same sums FrechetInceptionDistance.update accumulates, in float64; ``labels`` None: no classes."""
        double = features.double()
        labels = torch.empty(0, dtype=torch.int64) if labels is None else labels.to(torch.int64)
        return cls(double.sum(dim=0), double.t().mm(double), features.shape[0], features, labels)

    def matches(self, num_samples: int, num_features: int, labelled: bool = False) -> bool:
        """Shapes and dtypes are those of ``num_samples`` real images with ``num_features``-d features, and of their
        classes when ``labelled`` (else none)."""
        return (
            self.real_features_num_samples == num_samples
            and self.real_features_sum.shape == (num_features,)
            and self.real_features_cov_sum.shape == (num_features, num_features)
            and self.real_features.shape == (num_samples, num_features)
            and self.real_labels.shape == ((num_samples,) if labelled else (0,))
            and self.real_labels.dtype == torch.int64
            and self.real_features_sum.dtype == self.real_features_cov_sum.dtype == torch.float64
            and bool(self.real_features_cov_sum.isfinite().all() and self.real_features.isfinite().all())
        )


def reference_key(fields: dict[str, Any]) -> str:
    """Stable hash of the protocol fields that determine the real statistics."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class ReferenceCache:
    """One ``<name>-<key>.pt`` file per protocol under ``cache_dir``; safe for concurrent writers (atomic replace)."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir)

    def path(self, name: str, fields: dict[str, Any]) -> Path:
        return self.cache_dir / f"{name}-{reference_key(fields)[:16]}.pt"

    def load_or_build(
        self,
        path: Path,
        fields: dict[str, Any],
        build: Callable[[], ReferenceStats],
        num_samples: int,
        num_features: int,
        labelled: bool = False,
    ) -> ReferenceStats:
        """The statistics cached at ``path`` for ``fields``, else ``build()``, cached for the next run. A file that
        is unreadable or does not match ``fields`` and the shapes of ``num_samples`` ``num_features``-d features
        (with their classes when ``labelled``) is logged and rebuilt."""
        return load_or_build(
            path,
            load=partial(_read, fields=fields, num_samples=num_samples, num_features=num_features, labelled=labelled),
            build=build,
            save=partial(_write, fields=fields),
            what="reference statistics file",
        )


def _read(path: Path, fields: dict[str, Any], num_samples: int, num_features: int, labelled: bool) -> ReferenceStats:
    """The stored statistics; raises when the file is not a torch file, is of another format version, lacks a key or
    was written for other ``fields`` or shapes."""
    if not zipfile.is_zipfile(path):  # torch.save writes a zip; torch.load's own error on garbage is a page long
        raise ValueError("not a torch file")
    stored = torch.load(path, map_location="cpu", weights_only=True)
    if stored.get("format") != FORMAT_VERSION:  # checked first: an older file lacks the newer keys
        raise ValueError(f"format version {stored.get('format')}, not {FORMAT_VERSION}")
    stats = ReferenceStats(**{name: stored[name] for name in ReferenceStats.__dataclass_fields__})
    if stored["fields"] != fields or not stats.matches(num_samples, num_features, labelled):
        raise ValueError("written for another protocol or with other shapes")
    return stats


def _write(stats: ReferenceStats, path: Path, fields: dict[str, Any]) -> None:
    tensors = {name: value.cpu() if isinstance(value, Tensor) else value for name, value in vars(stats).items()}
    torch.save({"format": FORMAT_VERSION, "fields": fields, **tensors}, path)
