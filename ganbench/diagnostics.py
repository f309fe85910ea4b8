"""Did the generator learn anything? Cheap checks next to every evaluation, so that a run whose samples are grey noise
or one repeated image can never pass as a finished comparison (docs/evaluation.md, "did G learn anything?").

The checks compare the evaluation's generated samples with real ones on first and second moments, and report how well
D told real from fake during the training since the previous evaluation. They are a sanity net, not a metric: a run
can pass them and still be poor, but a run that fails them has learned nothing a metric should be trusted on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

# Spread of the samples (per-feature std across samples, averaged over features) as a share of the data's below which
# the generator draws (nearly) the same sample for every z.
COLLAPSED_SPREAD = 0.1
# Distance of the per-feature means from the data's, in units of the data's per-feature spread, above which the samples
# are not where the data are (e.g. grey noise against dark triangles on a light ground: > 1).
OFF_DATA_GAP = 0.5
DIAGNOSTIC_KEYS = (
    "fake_mean",
    "real_mean",
    "fake_std",
    "real_std",
    "spread_ratio",
    "mean_gap",
    "d_auc",
    "collapsed",
    "off_data",
)


def pairwise_auc(real_out: Tensor, fake_out: Tensor) -> Tensor:
    """P(D(real) > D(fake)) over all pairs (ties count half): D's accuracy at telling a real from a fake sample.

    Defined the same way for logits and critic values (no threshold to choose); 0.5 means D cannot tell them apart.
    """
    real, fake = real_out.detach().float().flatten(), fake_out.detach().float().flatten()
    difference = real[:, None] - fake[None, :]
    return (difference > 0).float().mean() + 0.5 * (difference == 0).float().mean()


class _Moments(Metric):
    """Streaming per-feature sums (Σx, Σx², n) as torchmetrics states, so that they sum over DDP ranks."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("x", "x2", "n"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, samples: Tensor) -> None:
        flat = samples.detach().double().flatten(1)
        self.x = self.x + flat.sum(0)  # the zero default broadcasts to the feature shape on the first update
        self.x2 = self.x2 + (flat * flat).sum(0)
        self.n = self.n + len(flat)

    def compute(self) -> tuple[Tensor, Tensor]:
        """Per-feature mean and variance (population) of everything seen."""
        mean = self.x / self.n
        return mean, (self.x2 / self.n - mean * mean).clamp_min(0.0)


def _summary(mean: Tensor, variance: Tensor) -> dict[str, float]:
    """Pooled mean and std over all values, and the per-feature spread (mean std across samples)."""
    pooled_variance = (variance + mean * mean).mean() - mean.mean() ** 2
    return {
        "mean": mean.mean().item(),
        "std": pooled_variance.clamp_min(0.0).sqrt().item(),
        "spread": variance.sqrt().mean().item(),
    }


class SampleDiagnostics:
    """First and second moments of the generated samples against ``num_real`` real ones (the protocol's reference
    data: the test split of an image data set, fixed draws of a mixture), and the flags ``collapsed`` and
    ``off_data``. Every rank calls every method, as for the scorers."""

    def __init__(self, num_real: int = 1000) -> None:
        self.num_real = num_real
        self.fake = _Moments()
        self.real: dict[str, float] | None = None
        self.real_mean = self.real_spread = torch.zeros(())

    def setup(self, real: Tensor, device: torch.device) -> None:
        """``real``: reference samples in the generator's output space (the same on every rank)."""
        moments = _Moments().to(device)
        moments.update(real.to(device))
        self.real_mean, real_variance = moments.compute()
        self.real_spread = real_variance.sqrt()
        self.real = _summary(self.real_mean, real_variance)
        self.fake.to(device)

    def reset(self) -> None:
        self.fake.reset()

    def update(self, fake: Tensor, labels: Tensor | None = None) -> None:
        """One chunk of samples; the classes they were generated for (``labels``) play no part here."""
        self.fake.update(fake)

    def compute(self, d_auc: float) -> dict[str, float]:
        """The diagnostics of the samples seen since ``reset``, with D's pairwise accuracy ``d_auc`` (see
        ``pairwise_auc``) averaged over the D steps since the previous evaluation."""
        if self.real is None:
            raise RuntimeError("SampleDiagnostics.setup(real, device) must run before compute()")
        mean, variance = self.fake.compute()
        fake = _summary(mean, variance)
        gap = ((mean - self.real_mean) ** 2).mean().sqrt() / (self.real_spread**2).mean().sqrt()
        spread_ratio = fake["spread"] / self.real["spread"]
        return {
            "fake_mean": fake["mean"],
            "real_mean": self.real["mean"],
            "fake_std": fake["std"],
            "real_std": self.real["std"],
            "spread_ratio": spread_ratio,
            "mean_gap": gap.item(),
            "d_auc": d_auc,
            "collapsed": float(not spread_ratio >= COLLAPSED_SPREAD),  # NaN (a diverged G) counts as collapsed
            "off_data": float(not gap.item() <= OFF_DATA_GAP),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "metrics": list(DIAGNOSTIC_KEYS),
            "num_real": self.num_real,
            "collapsed_below_spread_ratio": COLLAPSED_SPREAD,
            "off_data_above_mean_gap": OFF_DATA_GAP,
        }


def warnings_of(entry: dict[str, float] | None) -> list[str]:
    """What a person must know before trusting an evaluation's metrics, in words (empty when the checks pass)."""
    if not entry or "collapsed" not in entry:
        return []
    moments = [entry.get(key) for key in ("spread_ratio", "mean_gap", "fake_mean")]
    if any(value is None or not math.isfinite(value) for value in moments):  # NaN is stored as null in the record
        return ["non-finite samples (the generator diverged)"]
    warnings = []
    if entry["collapsed"]:
        warnings.append(f"collapsed generator (sample spread {entry['spread_ratio']:.2g} of the data's)")
    if entry["off_data"]:
        warnings.append(
            f"samples off the data (mean {entry['fake_mean']:.2f} vs {entry['real_mean']:.2f}, "
            f"gap {entry['mean_gap']:.2g} data spreads)"
        )
    return warnings


def is_headline(key: str, primary: str | None = None) -> bool:
    """Whether ``key`` is one of the protocol's metrics: not a diagnostic (unless the protocol ranks by it), not a
    point of a threshold curve ("precision@1.5") and not one class of a per-class metric ("class_match/3")."""
    return key == primary or (key != "g_step" and key not in DIAGNOSTIC_KEYS and not {"@", "/"} & set(key))


def headline(entry: dict[str, float] | None, primary: str | None = None) -> dict[str, float]:
    """The protocol's metrics of an evaluation (``is_headline``)."""
    return {k: v for k, v in (entry or {}).items() if is_headline(k, primary)}
