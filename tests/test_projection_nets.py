"""Class-conditional DCGAN and ResNet (Miyato & Koyama 2018): conditional BN in G, projection D, and unconditional
networks left as they were."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganbench.batch_norm import evaluation_generator
from ganbench.nets import dcgan, resnet
from ganbench.nets.base import Generator
from ganbench.nets.conditioning import ConditionalBatchNorm2d

CLASSES = 3
WIDTH = 8
BATCH = 6
LABELS = torch.tensor([0, 1, 2, 0, 1, 2])
OTHER_LABELS = torch.tensor([0, 2, 2, 1, 1, 0])  # the same as LABELS at positions 0, 2, 4 only
# (model, image size, channels)
CASES = [("dcgan", 28, 1), ("dcgan", 32, 3), ("resnet", 32, 3)]
# φ(x) per example: DCGAN's last hidden map (2·width channels on 7×7, 4·width on 4×4), ResNet's pooled features
PHI_SHAPES = {("dcgan", 28): (2 * WIDTH, 7, 7), ("dcgan", 32): (4 * WIDTH, 4, 4), ("resnet", 32): (WIDTH,)}

# ------------------------------------------------------------------ the unconditional state-dict keys, as at HEAD

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
SN = ("parametrizations.weight.original", "parametrizations.weight.0._u", "parametrizations.weight.0._v")
WEIGHT, WEIGHT_BIAS = ("weight",), ("weight", "bias")


def _keys(layers: dict[str, tuple[str, ...]]) -> set[str]:
    return {f"{prefix}.{name}" for prefix, names in layers.items() for name in names}


# DCGAN 28×28, width 8: G with its BNs; D with BN and spectral norm (the first conv keeps its bias, the normed not).
DCGAN_G_KEYS = _keys({"net.1": WEIGHT, "net.2": BN, "net.4": WEIGHT, "net.5": BN, "net.7": WEIGHT_BIAS})
DCGAN_D_KEYS = _keys({"net.0": ("bias", *SN), "net.3": SN, "net.4": BN, "net.6": ("bias", *SN)})
_RESNET_G_BLOCK = {"residual.0": BN, "residual.3": WEIGHT_BIAS, "residual.4": BN, "residual.6": WEIGHT_BIAS}
RESNET_G_KEYS = _keys(
    {
        "net.0": WEIGHT_BIAS,
        **{f"net.{block}.{layer}": names for block in (2, 3, 4) for layer, names in _RESNET_G_BLOCK.items()},
        **{f"net.{block}.shortcut.1": WEIGHT_BIAS for block in (2, 3, 4)},
        "net.5": BN,
        "net.7": WEIGHT_BIAS,
    }
)
_SN_BIAS = ("bias", *SN)
RESNET_D_KEYS = _keys(
    {
        **{f"features.0.{layer}": _SN_BIAS for layer in ("residual.0", "residual.2", "shortcut.0")},
        **{f"features.1.{layer}": _SN_BIAS for layer in ("residual.1", "residual.3", "shortcut.0")},
        **{f"features.{block}.{layer}": _SN_BIAS for block in (2, 3) for layer in ("residual.1", "residual.3")},
        "head": _SN_BIAS,
    }
)


def make_generator(model: str, size: int, channels: int, num_classes: int | None = CLASSES) -> Generator:
    make = dcgan.DCGANGenerator if model == "dcgan" else resnet.ResNetGenerator
    return make(image_size=size, channels=channels, width=WIDTH, num_classes=num_classes)


def make_discriminator(
    model: str, size: int, channels: int, num_classes: int | None = CLASSES, spectral_norm: bool = True
) -> nn.Module:
    if model == "dcgan":
        return dcgan.DCGANDiscriminator(size, channels, WIDTH, spectral_norm=spectral_norm, num_classes=num_classes)
    return resnet.ResNetDiscriminator(size, channels, WIDTH, spectral_norm=spectral_norm, num_classes=num_classes)


def images(size: int, channels: int) -> Tensor:
    return torch.rand(BATCH, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def last_layer(d: nn.Module) -> nn.Module:
    """The layer that reads φ(x): DCGAN's conv to 1×1, ResNet's fc."""
    return d.net[-2] if isinstance(d, dcgan.DCGANDiscriminator) else d.head


def randomise_conditional_bn_(g: nn.Module) -> None:
    """Per-class gains and biases start at 1 and 0 (plain BN, blind to the label): make the classes differ."""
    for layer in g.modules():
        if isinstance(layer, ConditionalBatchNorm2d):
            nn.init.normal_(layer.gain.weight)
            nn.init.normal_(layer.bias.weight)


# ------------------------------------------------------------------------------------ unconditional: unchanged


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (lambda: dcgan.DCGANGenerator(28, 1, width=WIDTH), DCGAN_G_KEYS),
        (lambda: dcgan.DCGANDiscriminator(28, 1, WIDTH, batch_norm=True, spectral_norm=True), DCGAN_D_KEYS),
        (lambda: resnet.ResNetGenerator(width=WIDTH), RESNET_G_KEYS),
        (lambda: resnet.ResNetDiscriminator(width=WIDTH), RESNET_D_KEYS),
    ],
    ids=["dcgan-G", "dcgan-D", "resnet-G", "resnet-D"],
)
def test_unconditional_state_dict_keys_are_those_of_before(net, expected: set[str]) -> None:
    """Checkpoints of unconditional runs load as before: nothing renamed, nothing added."""
    assert set(net().state_dict()) == expected


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_projection_is_built_after_the_unconditional_layers(
    model: str, size: int, channels: int, spectral_norm: bool
) -> None:
    """With the same seed, a conditional D is the unconditional one plus its projection: same keys and values for
    the old layers (including spectral norm's random u, v), and the same output once the class term is taken away."""
    torch.manual_seed(0)
    plain = make_discriminator(model, size, channels, None, spectral_norm)
    torch.manual_seed(0)
    conditional = make_discriminator(model, size, channels, CLASSES, spectral_norm)
    assert plain.projection is None
    old = plain.state_dict()
    new = {key: value for key, value in conditional.state_dict().items() if not key.startswith("projection.")}
    assert list(new) == list(old)
    assert all(torch.equal(new[key], old[key]) for key in old)

    x = images(size, channels)
    plain.eval()  # no power iteration: both forwards see the same weights
    conditional.eval()
    with torch.no_grad():
        features = {}
        last_layer(conditional).register_forward_hook(lambda _m, args, _out: features.update(phi=args[0]))
        class_term = conditional(x, LABELS) - plain(x)
        expected = conditional.projection(features["phi"], LABELS)
    torch.testing.assert_close(class_term, expected)


# --------------------------------------------------------------------------------------------- conditional G


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_conditional_generator_follows_each_examples_label(model: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    g = make_generator(model, size, channels)
    randomise_conditional_bn_(g)
    z = g.sample_latent(BATCH)
    with torch.no_grad():
        g(z, LABELS)  # running statistics away from their 0 / 1 start
        g.eval()  # then each example's output depends on its own z and label only
        out, again, other = g(z, LABELS), g(z, LABELS), g(z, OTHER_LABELS)
    assert out.shape == (BATCH, channels, size, size)
    assert torch.equal(out, again)
    same = LABELS == OTHER_LABELS
    assert torch.equal(out[same], other[same])
    assert (out[~same] - other[~same]).flatten(1).abs().amax(dim=1).min() > 1e-3


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_conditional_networks_refuse_missing_labels(model: str, size: int, channels: int) -> None:
    g, d = make_generator(model, size, channels), make_discriminator(model, size, channels)
    with pytest.raises(ValueError, match="needs the labels"):
        g(g.sample_latent(2))
    with pytest.raises(ValueError, match="needs the labels"):
        d(images(size, channels))


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_conditional_bn_keeps_a_real_batch_norm_for_standing_statistics(model: str, size: int, channels: int) -> None:
    """Standing statistics (ganbench.batch_norm, G fed balanced labels) find and recompute the BatchNorm inside each
    cBN."""
    torch.manual_seed(0)
    g = make_generator(model, size, channels)
    conditional = [layer.norm for layer in g.modules() if isinstance(layer, ConditionalBatchNorm2d)]
    assert conditional and all(type(norm) is nn.BatchNorm2d for norm in conditional)
    evaluated = evaluation_generator(g, "standing", standing_samples=2 * BATCH, batch_size=BATCH, seed=0)
    norms = [layer.norm for layer in evaluated.modules() if isinstance(layer, ConditionalBatchNorm2d)]
    for norm in norms:
        assert norm.num_batches_tracked == 2
        assert norm.running_mean.abs().sum() > 0
        assert not torch.equal(norm.running_var, torch.ones_like(norm.running_var))


# --------------------------------------------------------------------------------------------- conditional D


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_projection_discriminator_is_head_plus_inner_product(
    model: str, size: int, channels: int, spectral_norm: bool
) -> None:
    """D(x, y) = last layer(φ(x)) + ⟨embed(y), φ(x)⟩, φ(x) being what the last layer reads (training mode)."""
    torch.manual_seed(0)
    d = make_discriminator(model, size, channels, spectral_norm=spectral_norm)
    seen = {}
    last_layer(d).register_forward_hook(lambda _m, args, out: seen.update(phi=args[0], head=out))
    x = images(size, channels)
    with torch.no_grad(), parametrize.cached():  # one spectral-norm weight for the forward and the check
        out = d(x, LABELS)
        embed = d.projection.embed.weight
        by_hand = seen["head"].flatten() + (embed[LABELS] * seen["phi"].flatten(1)).sum(dim=1)
    assert out.shape == (BATCH,)
    assert seen["phi"].shape == (BATCH, *PHI_SHAPES[model, size])
    assert embed.shape == (CLASSES, seen["phi"][0].numel())
    torch.testing.assert_close(out, by_hand)


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_projection_embedding_is_spectrally_normalised_with_the_rest(model: str, size: int, channels: int) -> None:
    plain = make_discriminator(model, size, channels, spectral_norm=False)
    assert not parametrize.is_parametrized(plain.projection.embed)
    d = make_discriminator(model, size, channels, spectral_norm=True)
    assert parametrize.is_parametrized(d.projection.embed, "weight")
    for _ in range(3):  # a few power iterations
        d(images(size, channels), LABELS)
    sigma = torch.linalg.matrix_norm(d.projection.embed.weight.detach(), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_labels_change_only_their_own_examples_output(model: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    d = make_discriminator(model, size, channels).eval()
    x = images(size, channels)
    with torch.no_grad():
        out, other = d(x, LABELS), d(x, OTHER_LABELS)
    same = LABELS == OTHER_LABELS
    assert torch.equal(out[same], other[same])
    assert (out[~same] - other[~same]).abs().min() > 1e-6


@pytest.mark.parametrize(("model", "size", "channels"), CASES)
def test_gradient_penalty_can_differentiate_the_projection_discriminator(model: str, size: int, channels: int) -> None:
    """WGAN-GP / R1 need ∂D(x, y)/∂x with a graph, and a backward through it into every parameter."""
    torch.manual_seed(0)
    d = make_discriminator(model, size, channels)
    x = images(size, channels).requires_grad_()
    (grad,) = torch.autograd.grad(d(x, LABELS).sum(), x, create_graph=True)
    assert grad.shape == x.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()
    embedding = d.projection.embed.parametrizations.weight.original
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0
