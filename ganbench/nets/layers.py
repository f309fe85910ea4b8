"""What the networks share, written once for all of them: the image-size check, weight initialisation, spectral
normalisation, optional BatchNorm layers and the LeakyReLU slope."""

from __future__ import annotations

from collections.abc import Collection

from torch import nn
from torch.nn.utils import parametrizations

from ganbench.errors import UserError

INIT_STD = 0.02  # DCGAN (Radford et al.) and compare_gan v1 (Lucic et al.): weights ~ N(0, 0.02)
LEAK = 0.2  # the negative slope of every LeakyReLU (DCGAN, InfoGAN, MLP), as in Radford et al. and compare_gan v1

WeightLayer = nn.Linear | nn.Conv2d | nn.ConvTranspose2d


class UnsupportedImageSize(UserError, ValueError):
    """An image size a network has no geometry for. A ValueError too, so that ``ganbench.errors`` reports it as a
    refused config argument, naming the config node that passed it."""


def check_image_size(model: str, image_size: int, supported: Collection[int]) -> None:
    """Fail at construction, naming the sizes that work, instead of with a shape error deep inside a forward pass."""
    if image_size not in supported:
        sizes = ", ".join(str(size) for size in sorted(supported))
        raise UnsupportedImageSize(f"{model} supports image_size in {{{sizes}}}, got {image_size}")


def normal_init_(module: nn.Module, std: float = INIT_STD, truncate_conv: bool = False) -> nn.Module:
    """Weights ~ N(0, std) and zero biases on every Linear / Conv2d / ConvTranspose2d of ``module``.

    ``truncate_conv`` draws the forward convolutions' weights from N(0, std) cut at ±2·std, as TF's
    ``truncated_normal_initializer`` did for ``conv2d`` in compare_gan v1 (its linear and deconv layers stay normal).
    Like TF, the truncated draw is not rescaled, so its standard deviation is ≈ 0.88·std.
    """
    for layer in module.modules():
        if not isinstance(layer, WeightLayer):
            continue
        if truncate_conv and isinstance(layer, nn.Conv2d):
            nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
        else:
            nn.init.normal_(layer.weight, mean=0.0, std=std)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every Linear / Conv2d weight of ``module``, in place.

    Call it after initialising the weights: the parametrization keeps the initialised tensor as ``original``.
    """
    layers = [layer for layer in module.modules() if isinstance(layer, nn.Linear | nn.Conv2d)]
    for layer in layers:
        parametrizations.spectral_norm(layer)
    return module


def batch_norm_or_identity(enabled: bool, features: int, dims: int = 2, **kwargs: float) -> nn.Module:
    """A BatchNorm layer (1-d over features, 2-d over channels) or Identity, so layer indices stay the same."""
    if not enabled:
        return nn.Identity()
    norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return norm(features, **kwargs)
