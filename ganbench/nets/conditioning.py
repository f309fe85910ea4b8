"""Class-conditional networks: the layers that let G(z, y) and D(x, y) see a class label y.

Two ways, one per family of networks (docs/conditional.md):

- **One-hot concatenation** (CGAN, Mirza & Osindero 2014) for the MLP and InfoGAN networks: the one-hot label is
  appended to G's latent and to D's input (tiled over the pixels of an image, as extra channels).
- **Projection** (Miyato & Koyama 2018) for DCGAN and ResNet: D adds ⟨embed(y), φ(x)⟩ to its output, φ(x) being
  the features its last layer reads; G's BatchNorm layers take a per-class gain and bias (conditional BatchNorm).

A network built with ``num_classes=None`` is the unconditional one, parameter for parameter.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.functional import one_hot
from torch.nn.utils import parametrizations


def _check_labels(labels: Tensor | None, num_classes: int) -> Tensor:
    if labels is None:
        raise ValueError(f"a class-conditional network ({num_classes} classes) needs the labels of its inputs")
    return labels


def with_one_hot(inputs: Tensor, labels: Tensor | None, num_classes: int | None) -> Tensor:
    """``inputs`` with the one-hot of ``labels`` appended along dim 1 (tiled over the spatial dims of an image);
    ``inputs`` unchanged for an unconditional network (``num_classes`` None)."""
    if num_classes is None:
        return inputs
    codes = one_hot(_check_labels(labels, num_classes), num_classes).to(inputs.dtype)
    spatial = inputs.shape[2:]
    codes = codes.view(*codes.shape, *(1 for _ in spatial)).expand(-1, -1, *spatial)
    return torch.cat([inputs, codes], dim=1)


def input_width(width: int, num_classes: int | None) -> int:
    """The width of a layer that reads ``with_one_hot``'s output: ``width`` plus one per class."""
    return width + (num_classes or 0)


class ClassConditional(nn.Module):
    """A layer whose forward pass takes the labels too: ``forward(x, labels)``. ``LabelledSequential`` passes them."""


class LabelledSequential(nn.Sequential, ClassConditional):
    """``nn.Sequential`` that also hands ``labels`` to its class-conditional layers (same parameters and keys)."""

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        for layer in self:
            x = layer(x, labels) if isinstance(layer, ClassConditional) else layer(x)
        return x


class ConditionalBatchNorm2d(ClassConditional):
    """BatchNorm without its own affine part, followed by a per-class gain and bias (initialised to 1 and 0, so that
    it starts as plain BatchNorm). The normalisation is a real ``nn.BatchNorm2d``: its running statistics are
    recomputed and used like any other's (``ganbench.batch_norm``)."""

    def __init__(self, num_features: int, num_classes: int, **batch_norm_kwargs: float) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.norm = nn.BatchNorm2d(num_features, affine=False, **batch_norm_kwargs)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = _check_labels(labels, self.num_classes)
        gain = self.gain(labels)[:, :, None, None]
        bias = self.bias(labels)[:, :, None, None]
        return gain * self.norm(x) + bias


def batch_norm_2d(num_features: int, num_classes: int | None, **batch_norm_kwargs: float) -> nn.Module:
    """G's BatchNorm over channels: plain, or conditional on the class when ``num_classes`` is set."""
    if num_classes is None:
        return nn.BatchNorm2d(num_features, **batch_norm_kwargs)
    return ConditionalBatchNorm2d(num_features, num_classes, **batch_norm_kwargs)


class Projection(nn.Module):
    """The class term of a projection discriminator: ⟨embed(y), φ(x)⟩ per example, φ flattened. A spectrally
    normalised D normalises the embedding too (SNGAN's projection D)."""

    def __init__(self, num_classes: int, num_features: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, num_features)
        nn.init.xavier_uniform_(self.embed.weight)
        if spectral_norm:
            parametrizations.spectral_norm(self.embed)

    def forward(self, features: Tensor, labels: Tensor | None) -> Tensor:
        labels = _check_labels(labels, self.num_classes)
        return (self.embed(labels) * features.flatten(start_dim=1)).sum(dim=1)


class _OnLabels(nn.Module):
    """D(·, y) for the labels y of one batch."""

    def __init__(self, discriminator: nn.Module, labels: Tensor) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.labels = labels

    def forward(self, x: Tensor) -> Tensor:
        return self.discriminator(x, self.labels)


def on_labels(discriminator: nn.Module, labels: Tensor | None) -> nn.Module:
    """D as the one-input critic that losses and penalties call: D(·, y) for a conditional batch, D itself else.
    A batch's real and generated samples share its labels, so D(real, y), D(G(z, y), y) and a penalty on points
    between them all read the same y."""
    return discriminator if labels is None else _OnLabels(discriminator, labels)
