"""DCGAN (Radford et al. 2016): all-convolutional G and D, the common baseline architecture beyond Lucic et al.

G: z → deconv to a base×base map → [deconv k4 s2 → BN → ReLU] per doubling → deconv k4 s2 → tanh.
D: mirror image: conv k4 s2 → LReLU(0.2) → [conv k4 s2 → BN → LReLU] per halving → conv to 1×1: one raw output.
The channels halve (G) / double (D) at each resolution step, ``width`` being the width next to the image.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganbench.nets.base import Generator, LatentDistribution
from ganbench.nets.layers import LEAK, apply_spectral_norm, batch_norm_or_identity, check_image_size, normal_init_

# image size → (base resolution, number of k4 s2 stages between base and image): 4→…→32/64 as in Radford et al.;
# 28 px starts from 7×7, which costs nothing and lets the same model run on MNIST-sized data.
GEOMETRY = {28: (7, 2), 32: (4, 3), 64: (4, 4)}


def _widths(width: int, stages: int) -> list[int]:
    """Channels at each resolution from the image side inwards: width, 2·width, 4·width, …"""
    return [width * 2**i for i in range(stages)]


class DCGANGenerator(Generator):
    """z ~ U(−1, 1)^100 as in Radford et al.; BN + ReLU in every hidden layer, tanh output in [−1, 1]."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        width: int = 64,
        latent_distribution: LatentDistribution = "uniform",
    ) -> None:
        super().__init__(latent_dim, latent_distribution)
        check_image_size("dcgan", image_size, GEOMETRY)
        base, stages = GEOMETRY[image_size]
        widths = _widths(width, stages)[::-1]  # from the base inwards: e.g. 512, 256, 128, 64
        layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1))]
        in_ch = latent_dim
        for i, out_ch in enumerate(widths):
            kernel, stride, padding = (base, 1, 0) if i == 0 else (4, 2, 1)  # 1×1 → base×base, then doublings
            layers += [
                nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(),
            ]
            in_ch = out_ch
        layers += [nn.ConvTranspose2d(in_ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        normal_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """LReLU(0.2), BN in every hidden layer but the first; ``spectral_norm`` normalises every conv (SNGAN's option,
    usually with ``batch_norm=False``)."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        batch_norm: bool = True,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_image_size("dcgan", image_size, GEOMETRY)
        base, stages = GEOMETRY[image_size]
        layers: list[nn.Module] = []
        in_ch = channels
        for i, out_ch in enumerate(_widths(width, stages)):
            normed = batch_norm and i > 0
            layers += [
                nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=not normed),
                batch_norm_or_identity(normed, out_ch),
                nn.LeakyReLU(LEAK),
            ]
            in_ch = out_ch
        layers += [nn.Conv2d(in_ch, 1, base, 1, 0), nn.Flatten(0)]
        self.net = nn.Sequential(*layers)
        normal_init_(self)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
