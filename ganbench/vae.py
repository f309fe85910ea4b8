"""The VAE baseline of Lucic et al. 2018 (the VAE row of Table 2), trained and scored like the GANs.

The decoder is the model group's generator, unchanged (InfoGAN's G on images, the MLP on the 2-D mixtures), so the
evaluation samples it exactly as it samples a GAN's G: from the protocol's fixed latents, drawn from G's own prior. The
encoder follows the model's discriminator with a Gaussian head (``ConvEncoder``: InfoGAN's D layers, as compare_gan
v1's ``VAE.encoder``; ``MLPEncoder`` on points). Training maximises the ELBO

    log p(x) ≥ E_q(z|x)[log p(x|z)] − KL(q(z|x) ‖ p(z)),   q(z|x) = N(μ(x), diag σ²(x)),   p(z) = N(0, I),

one optimizer step on one real batch per "G step", so ``training.g_steps`` is the same budget as for a GAN; there is
no discriminator, so ``d_steps`` stays 0 and D's accuracy is NaN (absent from the result line). The likelihood
p(x|z) is data: ``BernoulliLikelihood`` on pixels rescaled to [0, 1] (compare_gan v1's VAE), ``GaussianLikelihood``
with a fixed σ on points (``conf/vae_data/``).

``build_module`` is what ``conf/loss/vae.yaml``'s ``training_module`` node names: ``ganbench.run.build_module``
calls it instead of building a GANModule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.optim import Optimizer

from ganbench.budgeted_module import BudgetedModule, gradient_norm
from ganbench.errors import UserError
from ganbench.nets.base import Generator
from ganbench.nets.infogan import BN_EPS, BN_MOMENTUM, CHANNELS, HIDDEN, SUPPORTED_SIZES
from ganbench.nets.layers import LEAK, batch_norm_or_identity, check_image_size, normal_init_

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]


class NotAVAESetting(UserError, ValueError):
    """A setting the VAE cannot train with (a uniform prior, several real batches per step). A ValueError too, like
    the networks' refusals, so that ``ganbench.errors`` reports it as bad input."""


# ------------------------------------------------------------------------------------------------- the ELBO's terms


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, diag exp(log_var)) ‖ N(0, I)) per example, in closed form: ½ Σ (μ² + σ² − log σ² − 1)."""
    return 0.5 * (mean.square() + log_var.exp() - log_var - 1.0).sum(dim=1)


class Likelihood(Protocol):
    def negative_log_likelihood(self, output: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) per example, for the decoder's ``output`` = G(z)."""


class BernoulliLikelihood:
    """−log p(x|z) = −Σ [t log p + (1 − t) log(1 − p)] over the features: the data ``t`` and the decoder's output ``p``
    mapped from [low, high] (the data's range, [−1, 1]) onto [0, 1], as compare_gan v1's VAE does on its [0, 1] pixels
    (grey levels as soft targets). ``p`` is squeezed into [eps, 1 − eps] affinely rather than clipped, so a saturated
    wrong pixel keeps a gradient; the decoder's output must lie in [low, high] (every image G here ends in a sigmoid
    or tanh)."""

    def __init__(self, low: float = -1.0, high: float = 1.0, eps: float = 1e-6) -> None:
        if not high > low or not 0.0 < eps < 0.5:
            raise ValueError(f"BernoulliLikelihood needs low < high and 0 < eps < 0.5, got {low}, {high}, {eps}")
        self.low, self.high, self.eps = low, high, eps

    def negative_log_likelihood(self, output: Tensor, x: Tensor) -> Tensor:
        scale = self.high - self.low
        target = ((x.float() - self.low) / scale).flatten(1)
        p = self.eps + (1.0 - 2.0 * self.eps) * ((output.float() - self.low) / scale).flatten(1)
        return -(target * p.log() + (1.0 - target) * (1.0 - p).log()).sum(dim=1)


class GaussianLikelihood:
    """−log N(x; output, std² I) = Σ [(x − output)² / (2 std²) + log std + ½ log 2π] over the features: a decoder
    with a fixed σ, for unbounded data (the 2-D mixtures, where ``std`` defaults to the modes' own σ)."""

    def __init__(self, std: float = 1.0) -> None:
        if not std > 0:
            raise ValueError(f"GaussianLikelihood needs std > 0, got {std}")
        self.std = std

    def negative_log_likelihood(self, output: Tensor, x: Tensor) -> Tensor:
        squared = ((x.float() - output.float()) / self.std).square().flatten(1)
        constant = math.log(self.std) + 0.5 * math.log(2.0 * math.pi)
        return 0.5 * squared.sum(dim=1) + constant * squared.shape[1]


@dataclass
class ELBOTerms:
    """One evaluation of the negative ELBO on a batch, in nats per example (batch means)."""

    total: Tensor  # reconstruction + kl = −ELBO, the training loss
    reconstruction: Tensor  # E_q[−log p(x|z)], one sample of z per example
    kl: Tensor  # KL(q(z|x) ‖ N(0, I)), in closed form


class ELBO:
    """The VAE's training objective: −ELBO = E_q[−log p(x|z)] + KL(q(z|x) ‖ N(0, I)), with one reparameterised draw
    z = μ + σ·ε per example (Kingma & Welling 2014). ``name`` is the loss name of the records and result lines."""

    def __init__(self, name: str, likelihood: Likelihood) -> None:
        self.name = name
        self.likelihood = likelihood

    def __call__(self, encoder: nn.Module, decoder: Generator, x: Tensor) -> ELBOTerms:
        mean, log_var = (t.float() for t in encoder(x))
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        reconstruction = self.likelihood.negative_log_likelihood(decoder(z), x).mean()
        kl = gaussian_kl(mean, log_var).mean()
        return ELBOTerms(reconstruction + kl, reconstruction, kl)


# ----------------------------------------------------------------------------------------------------- the encoders


class ConvEncoder(nn.Module):
    """conv 64 → LReLU → conv 128 → [BN] → LReLU → fc 1024 → [BN] → LReLU → fc 2·latent_dim → (μ, log σ²).

    InfoGAN's D (``ganbench.nets.infogan``) with a Gaussian head, as compare_gan v1's VAE encoder: the same layers,
    init and BatchNorm settings; its head gives the log-variance where compare_gan's gave σ = softplus(·) + 1e-6."""

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        latent_dim: int = 64,
        batch_norm: bool = True,
        hidden: int = HIDDEN,
        base_channels: int = CHANNELS,
    ) -> None:
        super().__init__()
        check_image_size("the VAE's conv encoder", image_size, SUPPORTED_SIZES)
        base = image_size // 4
        wide = 2 * base_channels
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Conv2d(channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(base_channels, wide, kernel_size=4, stride=2, padding=1),
            batch_norm_or_identity(batch_norm, wide, dims=2, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.LeakyReLU(LEAK),
            nn.Flatten(),
            nn.Linear(wide * base * base, hidden),
            batch_norm_or_identity(batch_norm, hidden, dims=1, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.LeakyReLU(LEAK),
            nn.Linear(hidden, 2 * latent_dim),
        )
        normal_init_(self, truncate_conv=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.net(x).chunk(2, dim=1)
        return mean, log_var


class MLPEncoder(nn.Module):
    """x → [Linear → LeakyReLU(0.2)] × num_hidden → Linear(2·latent_dim) → (μ, log σ²): the MLP discriminator of
    ``ganbench.nets.mlp`` with a Gaussian head (inputs are flattened)."""

    def __init__(self, data_dim: int = 2, latent_dim: int = 2, hidden_dim: int = 200, num_hidden: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = data_dim
        for _ in range(num_hidden):
            layers += [nn.Linear(width, hidden_dim), nn.LeakyReLU(LEAK)]
            width = hidden_dim
        layers.append(nn.Linear(width, 2 * latent_dim))
        self.latent_dim = latent_dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.net(x).chunk(2, dim=1)
        return mean, log_var


# ------------------------------------------------------------------------------------------------ the training module


class VAEModule(BudgetedModule):
    """ELBO training with manual optimization: each G step is one step of both optimizers (decoder = G, encoder) on
    one real batch; stops itself after ``g_step_budget`` steps. Counters, budget, EMA, noise seeds and their
    checkpointing are BudgetedModule's, as for a GANModule; it takes no D step (``d_steps`` stays 0) and has no D
    accuracy.

    Two Adam optimizers over the two networks take the same steps as one Adam over both (Adam is elementwise), and let
    ``optim.generator`` / ``optim.discriminator`` set the decoder's / encoder's as they set G's / D's for a GAN."""

    def __init__(
        self,
        generator: Generator,
        encoder: nn.Module,
        loss: ELBO,
        generator_optimizer: OptimizerFactory,
        encoder_optimizer: OptimizerFactory,
        n_critic: int = 1,
        g_step_budget: int = 1000,
        ema_decay: float | None = None,
        compile_networks: bool = False,
        seed: int = 0,
    ) -> None:
        if generator.latent_distribution != "normal":
            raise NotAVAESetting(
                f"the VAE's prior is G's latent distribution, and its KL term is to N(0, I); this G draws "
                f"z ~ {generator.latent_distribution} (a Gaussian q(z|x) has infinite KL to U(−1, 1)^d). Use "
                "model.generator.latent_distribution=normal (conf/loss/vae.yaml sets it)"
            )
        if n_critic != 1:
            raise NotAVAESetting(
                f"training.n_critic={n_critic}: the VAE has no discriminator and takes one real batch per step; "
                "use training.n_critic=1 (conf/loss/vae.yaml sets it)"
            )
        super().__init__(generator, g_step_budget, ema_decay, seed)
        self.encoder = encoder
        self.loss = loss
        self.generator_optimizer = generator_optimizer
        self.encoder_optimizer = encoder_optimizer
        self.n_critic = n_critic  # real batches per step, as the data module reads it
        self.compile_networks = compile_networks

    def configure_model(self) -> None:
        if self.compile_networks:
            self.generator.compile()
            self.encoder.compile()

    def configure_optimizers(self) -> list[Optimizer]:
        return [
            self.generator_optimizer(self.generator.parameters()),
            self.encoder_optimizer(self.encoder.parameters()),
        ]

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        g_opt, e_opt = self.optimizers()
        terms = self.loss(self.encoder, self.generator, batch)
        g_opt.zero_grad(set_to_none=True)
        e_opt.zero_grad(set_to_none=True)
        self.manual_backward(terms.total)
        g_opt.step()
        e_opt.step()
        self.count_generator_step()

        if not torch.isfinite(terms.total.detach()):
            self.diverged = True
            self.trainer.should_stop = True
            return
        if self.training_curves_due:
            self.log_training_curves(
                {
                    "train/loss": terms.total,  # −ELBO, nats per example
                    "train/reconstruction": terms.reconstruction,
                    "train/kl": terms.kl,
                    "train/g_grad_norm": gradient_norm(self.generator),
                    "train/encoder_grad_norm": gradient_norm(self.encoder),
                }
            )
        if self.remaining_g_steps == 0:
            self.trainer.should_stop = True


def build_module(cfg: DictConfig) -> VAEModule:
    """The VAE of a composed config (``loss=vae``): G from ``model.generator`` as the decoder, ``model.encoder``
    (``conf/vae_data/``), the ELBO from ``loss``; the decoder's optimizer from ``optim.generator``, the encoder's from
    ``optim.discriminator``."""
    return VAEModule(
        generator=instantiate(cfg.model.generator),
        encoder=instantiate(cfg.model.encoder),
        loss=instantiate(cfg.loss),
        generator_optimizer=instantiate(cfg.optim.generator),
        encoder_optimizer=instantiate(cfg.optim.discriminator),
        n_critic=cfg.training.n_critic,
        g_step_budget=cfg.training.g_steps,
        ema_decay=cfg.training.ema_decay,
        compile_networks=cfg.training.compile,
        seed=cfg.seed,
    )
