"""The image protocol's feature network: the TF Inception v3, its weights file, and what goes in and comes out.

Kept apart from the scorer (:mod:`ganbench.metrics.inception`) so that the scorer only scores: any network with this
module's contract (uint8 RGB images in, :class:`Features` out, ``num_features`` and, for IS, ``num_logits``) can
replace the Inception one (docs/evaluation.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics.image.fid import NoTrainInceptionV3

from ganbench.errors import UserError

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity / torchmetrics
PYTORCH_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid: same network, same parameter names
IMAGE_TO_NETWORK = "clamp to [-1, 1], uint8 = round((x + 1) * 127.5), grey tiled to 3 channels"
OVERRIDE = "eval.scorers.inception"  # the config node of the image protocol's scorer, named in every fix


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
