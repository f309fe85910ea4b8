"""DCGAN (Radford et al. 2016): all-convolutional G and D, the common baseline architecture beyond Lucic et al.

G: z → deconv to a base×base map → [deconv k4 s2 → BN → ReLU] per doubling → deconv k4 s2 → tanh.
D: mirror image: conv k4 s2 → LReLU(0.2) → [conv k4 s2 → BN → LReLU] per halving → conv to 1×1: one raw output.
The channels halve (G) / double (D) at each resolution step, ``width`` being the width next to the image.
Class-conditional with ``num_classes`` (Miyato & Koyama 2018): conditional BN in G; D adds the projection
⟨embed(y), φ(x)⟩ of the base×base features φ(x) that its last conv reads.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganbench.nets.base import Generator, LatentDistribution
from ganbench.nets.conditioning import LabelledSequential, Projection, batch_norm_2d
from ganbench.nets.layers import LEAK, apply_spectral_norm, batch_norm_or_identity, check_image_size, normal_init_

# image size → (base resolution, number of k4 s2 stages between base and image): 4→…→32/64 as in Radford et al.;
# 28 px starts from 7×7, which costs nothing and lets the same model run on MNIST-sized data.
GEOMETRY = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
HEAD = 2  # D's last layers, conv to 1×1 and Flatten: what reads the features φ(x) that the projection reads too


def _widths(width: int, stages: int) -> list[int]:
    """Channels at each resolution from the image side inwards: width, 2·width, 4·width, …"""
    return [width * 2**i for i in range(stages)]


class DCGANGenerator(Generator):
    """z ~ U(−1, 1)^100 as in Radford et al.; BN + ReLU in every hidden layer, tanh output in [−1, 1]. With
    ``num_classes`` every BN is conditional on the label."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        width: int = 64,
        latent_distribution: LatentDistribution = "uniform",
        num_classes: int | None = None,
    ) -> None:
        super().__init__(latent_dim, latent_distribution, num_classes)
        check_image_size("dcgan", image_size, GEOMETRY)
        base, stages = GEOMETRY[image_size]
        widths = _widths(width, stages)[::-1]  # from the base inwards: e.g. 512, 256, 128, 64
        layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1))]
        in_ch = latent_dim
        for i, out_ch in enumerate(widths):
            kernel, stride, padding = (base, 1, 0) if i == 0 else (4, 2, 1)  # 1×1 → base×base, then doublings
            layers += [
                nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=False),
                batch_norm_2d(out_ch, num_classes),
                nn.ReLU(),
            ]
            in_ch = out_ch
        layers += [nn.ConvTranspose2d(in_ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = LabelledSequential(*layers)
        normal_init_(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z, labels)


class DCGANDiscriminator(nn.Module):
    """LReLU(0.2), BN in every hidden layer but the first; ``spectral_norm`` normalises every conv (SNGAN's option,
    usually with ``batch_norm=False``), the projection's embedding included. With ``num_classes``, a projection
    discriminator."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        batch_norm: bool = True,
        spectral_norm: bool = False,
        num_classes: int | None = None,
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
        # Built last, so that the unconditional layers draw the same random numbers as in an unconditional D.
        features = in_ch * base * base
        self.num_classes = num_classes
        self.projection = None if num_classes is None else Projection(num_classes, features, spectral_norm)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.net[:-HEAD](x)
        out = self.net[-HEAD:](features)
        return out if self.projection is None else out + self.projection(features, labels)
