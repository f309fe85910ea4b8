"""The image protocol's feature networks: the TF Inception v3 and DINOv2 (FD-DINOv2), their weights files, and what
goes in and comes out.

Kept apart from the scorer (:mod:`ganbench.metrics.inception`) so that the scorer only scores: any network with this
module's contract (uint8 RGB images in, :class:`Features` out, ``num_features`` and, for IS, ``num_logits``; an
optional ``metric_suffix`` renames the scorer's result keys, e.g. ``fid`` → ``fd_dinov2``) can replace the Inception
one (docs/evaluation.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import timm
import torch
from PIL import Image
from timm.models import load_state_dict
from timm.models.vision_transformer import checkpoint_filter_fn
from torch import Tensor, nn
from torch.nn import functional as F
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics.image.fid import NoTrainInceptionV3

from ganbench.errors import UserError

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity / torchmetrics
PYTORCH_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid: same network, same parameter names
IMAGE_TO_NETWORK = "clamp to [-1, 1], uint8 = round((x + 1) * 127.5), grey tiled to 3 channels"
OVERRIDE = "eval.scorers.inception"  # the config node of the image protocol's scorer, named in every fix

Resize = Literal["tf1_bilinear", "antialiased_bilinear", "clean"]
RESIZES: dict[str, str] = {  # how an image reaches the network's 299×299 input: a protocol field (docs/evaluation.md)
    "tf1_bilinear": "bilinear like TF 1.x (torch-fidelity), as behind the published reference numbers",
    "antialiased_bilinear": "PyTorch's antialiased bilinear (torchmetrics >= 1.8's default)",
    "clean": "PIL bicubic per channel in float32, clipped to [0, 255] (clean-fid), then rounded to uint8",
}


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


@torch.no_grad()
def extract_features(network: nn.Module, images: Tensor) -> Features:
    """One forward, in full precision whatever the training precision (bf16 features give a bf16 FID)."""
    with torch.autocast(images.device.type, enabled=False):
        return network(to_network_input(images))


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


def check_resize(resize: str) -> None:
    if resize not in RESIZES:
        raise UserError(f"{OVERRIDE}.resize={resize} is not a resize: choose one of {', '.join(RESIZES)}")


def clean_resize(images: Tensor, size: int) -> Tensor:
    """clean-fid's resize (Parmar et al. 2022): each channel as a float32 PIL image, bicubic to ``size``², clipped to
    [0, 255]; rounded to uint8 here, the input type of the torch-fidelity network (at most half a grey level)."""
    channels = images.cpu().numpy().astype(np.float32)
    resized = [
        np.asarray(Image.fromarray(channel, mode="F").resize((size, size), Image.Resampling.BICUBIC))
        for image in channels
        for channel in image
    ]
    stacked = np.stack(resized).reshape(len(images), images.shape[1], size, size).clip(0.0, 255.0)
    return torch.from_numpy(stacked).round().to(torch.uint8).to(images.device)


class InceptionV3Features(nn.Module):
    """The TF Inception v3 of 2015-12-05 as ported by torch-fidelity (torchmetrics' FID network): one forward gives
    the 2048-d pool features (FID, KID) and the 1008 unbiased logits (IS, as torchmetrics computes it).

    ``resize`` (``RESIZES``) says how images reach 299×299. The default, TF 1.x bilinear, gives the reference
    numbers; torchmetrics ≥ 1.8 defaults to an antialiased bilinear, and clean-fid to PIL bicubic, and each changes
    the scores (clean-fid measured 11.07 against 12.96 for one CIFAR-10 model). ``clean`` resizes before the network,
    whose own resize is then the identity on a 299×299 input.
    """

    num_features = 2048
    num_logits = 1008
    input_size = 299

    def __init__(self, weights_path: str | Path | None = None, resize: Resize = "tf1_bilinear") -> None:
        super().__init__()
        check_resize(resize)
        self.resize = resize
        path = Path(weights_path).expanduser() if weights_path is not None else hub_weights_path()
        offline = weights_path is not None or path.exists()  # else torch-fidelity downloads into the hub folder
        source = str(path) if offline else f"{URL_INCEPTION_V3} (no {OVERRIDE}.weights_path and no {path})"
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(path) if offline else None,
                antialias=resize == "antialiased_bilinear",
            )
        except Exception as error:
            raise _missing_weights(source, error) from error
        self.weights_file = path.name
        self.requires_grad_(False)

    def forward(self, images: Tensor) -> Features:
        if self.resize == "clean":
            images = clean_resize(images, self.input_size)
        pool, logits = self.net._torch_fidelity_forward(images)  # the public forward returns only the first output
        return Features(pool, logits)

    def describe(self) -> dict[str, Any]:
        return {
            "name": "inception-v3-compat (TF 2015-12-05, torch-fidelity port)",
            "weights_file": self.weights_file,
            "input_size": self.input_size,
            "resize": self.resize,
            "resize_method": RESIZES[self.resize],
            "features": "pool3 (2048)",
            "logits": "logits_unbiased (1008)",
        }


DINOV2_OVERRIDE = f"{OVERRIDE}.feature_network"  # conf/eval/dinov2.yaml's network node
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _missing_dinov2_weights(model: str, source: str, error: Exception | None) -> UserError:
    cause = f"cannot load the DINOv2 weights from {source}: {type(error).__name__}: {error}" if error else source
    return UserError(
        f"{cause}. FD-DINOv2 needs the {model} weights as a local timm-format file (never downloaded here): on a "
        f"machine with network run `huggingface-cli download timm/{model}.lvd142m model.safetensors` (or save "
        f"`timm.create_model('{model}.lvd142m', pretrained=True).state_dict()` with torch.save; Meta's "
        f"dinov2_*_pretrain.pth loads too), copy it here and pass "
        f"{DINOV2_OVERRIDE}.weights_path=/path/to/model.safetensors"
    )


class DINOv2Features(nn.Module):
    """A DINOv2 ViT (Oquab et al. 2023) as dgm-eval's encoder for FD-DINOv2 (Stein et al. 2023): images resized to
    224×224 bicubic, ImageNet-normalised, and the final-normed CLS token as the feature; no logits, so no IS.

    The resize is PyTorch's antialiased bicubic on uint8 (a = −0.5, PIL's kernel: 0.4 % of the pixels of noise images
    differ by one or two grey levels from the PIL ``Resize`` dgm-eval applies), run on the CPU because CUDA has no
    uint8 kernel and a float resize clips differently from PIL (up to 24 grey levels on noise). The weights are
    required: a timm ``.safetensors``/``.pth`` state_dict (or Meta's), whose 518-px position embedding timm's
    ``checkpoint_filter_fn`` resamples to the 16×16 grid of 224 px without antialiasing, as DINOv2's own
    interpolation does. ``architecture`` (embed_dim, depth, num_heads, …) lets tests build a tiny ViT.
    """

    input_size = 224
    metric_suffix = "dinov2"

    def __init__(
        self, model: str = "vit_large_patch14_dinov2", weights_path: str | Path | None = None, **architecture: Any
    ) -> None:
        super().__init__()
        if weights_path is None:
            raise _missing_dinov2_weights(model, f"no {DINOV2_OVERRIDE}.weights_path was given", None)
        if not (timm.is_model(model) and "dinov2" in model):
            raise UserError(
                f"{DINOV2_OVERRIDE}.model={model} is not a timm DINOv2 ViT: choose one of "
                f"{', '.join(timm.list_models('vit_*_dinov2'))}"
            )
        path = Path(weights_path).expanduser()
        try:  # read before the network is built: a bad file fails at once, not after initialising a ViT-L
            state_dict = load_state_dict(str(path))
        except Exception as error:
            raise _missing_dinov2_weights(model, str(path), error) from error
        self.net = timm.create_model(model, pretrained=False, num_classes=0, img_size=self.input_size, **architecture)
        try:  # a file of another model (ViT-B weights for ViT-L) does not fit
            self.net.load_state_dict(checkpoint_filter_fn(state_dict, self.net, antialias=False))
        except RuntimeError as error:
            raise _missing_dinov2_weights(model, str(path), error) from error
        self.model = model
        self.weights_file = path.name
        self.num_features: int = self.net.num_features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 (N, 3, H, W) → the normalised float (N, 3, 224, 224) network input, as dgm-eval's transform."""
        size = (self.input_size, self.input_size)
        resized = F.interpolate(images.cpu(), size=size, mode="bicubic", antialias=True).to(images.device)
        return (resized.float() / 255.0 - self.mean) / self.std

    def forward(self, images: Tensor) -> Features:
        return Features(self.net.forward_features(self.preprocess(images))[:, 0], None)

    def describe(self) -> dict[str, Any]:
        return {
            "name": f"DINOv2 {self.model} (timm)",
            "weights_file": self.weights_file,
            "input_size": self.input_size,
            "resize": "bicubic (antialiased, PIL's kernel, on uint8), as dgm-eval",
            "normalisation": "ImageNet mean/std",
            "features": f"CLS token after the final norm ({self.num_features})",
            "metric_suffix": self.metric_suffix,
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
