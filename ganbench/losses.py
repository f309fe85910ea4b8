"""GAN objectives, penalties and constraints, composed into one loss object per variant.

A variant is data, not code paths: ``conf/loss/<name>.yaml`` combines an :class:`Objective` (maps discriminator
outputs on real and fake data to the D and G losses), an optional :class:`Penalty` (a regulariser on D evaluated at
some inputs) and an optional :class:`Constraint` (acts on D's weights after each D step). The training step never asks
which one it has.

An objective may carry state that evolves with training (BEGAN's k_t): it updates it in
``after_discriminator_step`` from each D step's outputs, saves and restores it with ``state_dict`` /
``load_state_dict`` (GANModule puts it into its checkpoints) and reports it in ``logged_values`` (GANModule logs it
as ``train/<name>``). The other objectives have none of it, and their training is unchanged.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# --------------------------------------------------------------------------------------------------- objectives


class Objective(ABC):
    """Maps D's raw outputs (logits or critic values) on real and fake data to the two players' losses.

    ``generator_loss`` gets D's output on a real batch only when ``needs_real_in_generator_step`` (the relativistic
    objectives): the other objectives' G step costs one D forward, as in their papers."""

    needs_real_in_generator_step = False

    @abstractmethod
    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor: ...

    @abstractmethod
    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor: ...

    def after_discriminator_step(self, real_out: Tensor, fake_out: Tensor) -> None:
        """Update the objective's state from one D step's outputs (detached, computed before its optimizer step).
        Stateless objectives (all but BEGAN's) do nothing."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly (saved in GANModule's checkpoints); empty without state."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state to load, got {sorted(state)}")

    def logged_values(self) -> dict[str, float]:
        """Scalars to log with the training metrics (``train/<name>``); none without state."""
        return {}


class _CrossEntropy(Objective):
    """Binary cross-entropy on logits for D; ``real_label`` < 1 gives one-sided label smoothing."""

    def __init__(self, real_label: float = 1.0) -> None:
        self.real_label = real_label

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_target = torch.full_like(real_out, self.real_label)
        return F.binary_cross_entropy_with_logits(real_out, real_target) + F.binary_cross_entropy_with_logits(
            fake_out, torch.zeros_like(fake_out)
        )


class NonSaturating(_CrossEntropy):
    """NS GAN: G maximises log D(G(z)), i.e. minimises BCE(D(G(z)), 1) = softplus(−logit)."""

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return F.softplus(-fake_out).mean()


class Minimax(_CrossEntropy):
    """MM GAN, the true minimax game: G minimises log(1 − D(G(z))) = −softplus(logit), computed stably."""

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -F.softplus(fake_out).mean()


class LeastSquares(Objective):
    """LSGAN (a, b, c = 0, 1, 1): D regresses real to 1 and fake to 0, G pushes fake to 1.

    ``apply_sigmoid=True`` squashes D's output first, as compare_gan v1 (the paper's code) did; the default uses the
    unbounded output of Mao et al.
    """

    def __init__(self, real_label: float = 1.0, apply_sigmoid: bool = False) -> None:
        self.real_label = real_label
        self.apply_sigmoid = apply_sigmoid

    def _squash(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) if self.apply_sigmoid else out

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = self._squash(real_out), self._squash(fake_out)
        return 0.5 * ((real - self.real_label).pow(2).mean() + fake.pow(2).mean())

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return 0.5 * (self._squash(fake_out) - 1.0).pow(2).mean()


class Wasserstein(Objective):
    """WGAN critic objective: D maximises E D(x) − E D(G(z)); G maximises E D(G(z))."""

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.mean()


class Hinge(Objective):
    """Hinge loss (Lim & Ye; SNGAN): D minimises E relu(1 − D(x)) + E relu(1 + D(G(z))); G maximises E D(G(z))."""

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1.0 - real_out).mean() + F.relu(1.0 + fake_out).mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.mean()


class _Relativistic(Objective):
    """Relativistic objectives (Jolicoeur-Martineau 2018): D estimates how much more real a real sample is than a
    fake one, and G the opposite, so G's loss is D's with the roles of real and fake swapped and needs D(real)."""

    needs_real_in_generator_step = True

    @abstractmethod
    def _more_real(self, first: Tensor, second: Tensor) -> Tensor:
        """The loss of a player who wants ``first`` judged more real than ``second``."""

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return self._more_real(real_out, fake_out)

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        if real_out is None:
            raise ValueError(f"{type(self).__name__}.generator_loss needs D's output on a real batch (real_out)")
        return self._more_real(fake_out, real_out)


class RelativisticPairing(_Relativistic):
    """RSGAN (Jolicoeur-Martineau 2018), the RpGAN of R3GAN (Huang et al. 2024): E softplus(−(C(x₁) − C(x₂))) over
    pairs (real i, fake i), i.e. −log σ of the critic difference."""

    def _more_real(self, first: Tensor, second: Tensor) -> Tensor:
        return F.softplus(second - first).mean()


class RelativisticAverage(_Relativistic):
    """RaSGAN: each sample against the other side's mean critic value, −log σ(C(x₁) − E C(x₂)) for the side that
    should look more real and −log(1 − σ(C(x₂) − E C(x₁))) for the other."""

    def _more_real(self, first: Tensor, second: Tensor) -> Tensor:
        return F.softplus(second.mean() - first).mean() + F.softplus(second - first.mean()).mean()


class RelativisticAverageLeastSquares(_Relativistic):
    """RaLSGAN: E(C(x₁) − E C(x₂) − 1)² + E(C(x₂) − E C(x₁) + 1)² (the paper's form, without a ½)."""

    def _more_real(self, first: Tensor, second: Tensor) -> Tensor:
        return (first - second.mean() - 1.0).pow(2).mean() + (second - first.mean() + 1.0).pow(2).mean()


class RelativisticAverageHinge(_Relativistic):
    """RaHinge: E relu(1 − (C(x₁) − E C(x₂))) + E relu(1 + (C(x₂) − E C(x₁)))."""

    def _more_real(self, first: Tensor, second: Tensor) -> Tensor:
        return F.relu(1.0 - (first - second.mean())).mean() + F.relu(1.0 + (second - first.mean())).mean()


def _mean_over_processes(values: Tensor) -> Tensor:
    """The mean of ``values`` over the DDP processes (itself in a single process), so that a statistic every process
    computes from its own batch is the global batch's on every process."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    values = values.clone()
    torch.distributed.all_reduce(values)
    return values / torch.distributed.get_world_size()


class BoundaryEquilibrium(Objective):
    """BEGAN (Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks").

    D is an autoencoder whose output is a realness score, −L(x) per example, L the L1 reconstruction error
    (``ganbench.nets.autoencoder``); here L = −score, averaged over the batch. D minimises L(x) − k_t·L(G(z)),
    G minimises L(G(z)). After each D step, from that step's values, k ← clip(k + λ_k (γ L(x) − L(G(z))), 0, 1):
    the proportional control that holds E L(G(z)) = γ E L(x); γ (the diversity ratio) trades sample quality (low γ)
    for diversity. M_global = L(x) + |γ L(x) − L(G(z))| is the paper's convergence measure.

    ``k`` (initially ``k_init``, the paper's 0) is the objective's state: checkpointed, and logged as ``began_k``
    with ``convergence`` (M_global of the last D step). Under DDP the errors are averaged over the processes first,
    so every process holds the same k. compare_gan v1 (Lucic et al.'s code) differs: it does not clip k and updates
    it once per training step from a forward pass after the step."""

    def __init__(self, gamma: float = 0.75, lambda_k: float = 1e-3, k_init: float = 0.0) -> None:
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"BEGAN's gamma must be in [0, 1], got {gamma}")
        if not lambda_k > 0.0:
            raise ValueError(f"BEGAN's lambda_k must be > 0, got {lambda_k}")
        if not 0.0 <= k_init <= 1.0:
            raise ValueError(f"BEGAN's k_init must be in [0, 1], got {k_init}")
        self.gamma = gamma
        self.lambda_k = lambda_k
        self.k = float(k_init)
        self.convergence = math.nan  # M_global of the last D step; none before the first

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return -real_out.mean() + self.k * fake_out.mean()  # L(x) − k·L(G(z)) with L = −score

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.mean()  # L(G(z))

    def after_discriminator_step(self, real_out: Tensor, fake_out: Tensor) -> None:
        errors = _mean_over_processes(torch.stack([-real_out.double().mean(), -fake_out.double().mean()]))
        real_error, fake_error = errors.tolist()
        balance = self.gamma * real_error - fake_error
        self.k = min(max(self.k + self.lambda_k * balance, 0.0), 1.0)
        self.convergence = real_error + abs(balance)

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.k = float(state["k"])

    def logged_values(self) -> dict[str, float]:
        return {"began_k": self.k, "convergence": self.convergence}


# ---------------------------------------------------------------------------------------------------- penalties


def input_gradient(discriminator: nn.Module, inputs: Tensor) -> Tensor:
    """∂ Σ D(x) / ∂x per example, kept in the graph so that the penalty itself can be back-propagated.

    Computed with autocast off, in the dtype of D's parameters (fp32 under mixed precision): the inner gradient is not
    covered by the loss scaler of 16-bit training, and fp32 keeps it from underflowing. The gradient itself is taken
    inside the autocast-off block too: with ``create_graph`` its backward ops are recorded like forward ops, and under
    the trainer's autocast they would run in 16 bits (bf16 on the CPU: 3.7e-3 relative error, tests/test_losses.py)."""
    parameter = next(discriminator.parameters(), None)
    dtype = inputs.dtype if parameter is None else parameter.dtype
    inputs = inputs.detach().to(dtype).requires_grad_(True)
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        out = discriminator(inputs)
        (grad,) = torch.autograd.grad(out.sum(), inputs, create_graph=True)
    return grad.flatten(start_dim=1)


def _smoothed_norm(grad: Tensor, eps: float) -> Tensor:
    """‖g‖₂ as sqrt(eps + Σg²): finite gradient at g = 0, the form of compare_gan v1."""
    return torch.sqrt(eps + grad.pow(2).sum(dim=1))


def _per_example_uniform(like: Tensor) -> Tensor:
    """α ~ U(0, 1), one per example, shaped to broadcast over the example's other dimensions."""
    return torch.rand((like.shape[0],) + (1,) * (like.dim() - 1), device=like.device, dtype=like.dtype)


class Penalty(ABC):
    """A regulariser ``weight · value(D, real, fake)`` added to the discriminator's loss."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    @abstractmethod
    def value(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor: ...

    def __call__(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return self.weight * self.value(discriminator, real, fake)


class GradientPenalty(Penalty):
    """WGAN-GP: E[(‖∇D(x̂)‖ − 1)²] at x̂ = x + α(G(z) − x), α ~ U(0, 1) per example (Gulrajani et al.)."""

    def __init__(self, weight: float = 10.0, eps: float = 1e-4) -> None:
        super().__init__(weight)
        self.eps = eps

    def interpolation_weights(self, real: Tensor) -> Tensor:
        """α per example (overridable: a fixed α makes the penalty deterministic, e.g. to compare 1 vs N processes)."""
        return _per_example_uniform(real)

    def value(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        interpolates = real + self.interpolation_weights(real) * (fake.detach() - real)
        norm = _smoothed_norm(input_gradient(discriminator, interpolates), self.eps)
        return (norm - 1.0).pow(2).mean()


class DraganPenalty(Penalty):
    """DRAGAN (Kodali et al.): E[(‖∇D(x̂)‖ − 1)²] at x̂ = x + α·δ, δ = 0.5·std(x)·u, u ~ U[0, 1) elementwise and
    α ~ U(0, 1) per example: points between real data and its perturbation, as in compare_gan v1."""

    def __init__(self, weight: float = 10.0, eps: float = 1e-4) -> None:
        super().__init__(weight)
        self.eps = eps

    def value(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        perturbation = 0.5 * real.std() * torch.rand_like(real)
        alpha = _per_example_uniform(real)
        norm = _smoothed_norm(input_gradient(discriminator, real + alpha * perturbation), self.eps)
        return (norm - 1.0).pow(2).mean()


def _half_squared_gradient_norm(discriminator: nn.Module, inputs: Tensor) -> Tensor:
    """½ E‖∇D(x)‖² over the batch: the zero-centred penalties' value, so that their ``weight`` is the papers' γ."""
    return 0.5 * input_gradient(discriminator, inputs).pow(2).sum(dim=1).mean()


class R1Penalty(Penalty):
    """R1 (Mescheder et al.): ½ E‖∇D(x)‖² on real data, so ``weight`` is the paper's γ."""

    def value(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return _half_squared_gradient_norm(discriminator, real)


class R2Penalty(Penalty):
    """R2 (Mescheder et al.): ½ E‖∇D(G(z))‖² on generated data."""

    def value(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return _half_squared_gradient_norm(discriminator, fake)


class R1R2Penalty(Penalty):
    """R1 + R2 with one γ, R3GAN's regulariser (Huang et al. 2024): γ/2 (E‖∇D(x)‖² + E‖∇D(G(z))‖²)."""

    def value(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return _half_squared_gradient_norm(discriminator, real) + _half_squared_gradient_norm(discriminator, fake)


# -------------------------------------------------------------------------------------------------- constraints


class Constraint(ABC):
    """Acts on the discriminator's parameters right after each of its optimizer steps."""

    @abstractmethod
    def apply(self, discriminator: nn.Module) -> None: ...


class WeightClipping(Constraint):
    """Original WGAN: clamp every parameter of D to [−clip, clip]."""

    def __init__(self, clip: float = 0.01) -> None:
        self.clip = clip

    @torch.no_grad()
    def apply(self, discriminator: nn.Module) -> None:
        for param in discriminator.parameters():
            param.clamp_(-self.clip, self.clip)


# ------------------------------------------------------------------------------------------------- composition


@dataclass
class DiscriminatorLoss:
    """The parts of one discriminator loss evaluation, for the backward pass and for logging."""

    total: Tensor
    objective: Tensor
    penalty: Tensor
    real_out: Tensor
    fake_out: Tensor


class GANLoss:
    """One loss variant: an objective, optionally a penalty on D and a constraint on D's weights."""

    def __init__(
        self,
        name: str,
        objective: Objective,
        penalty: Penalty | None = None,
        constraint: Constraint | None = None,
    ) -> None:
        self.name = name
        self.objective = objective
        self.penalty = penalty
        self.constraint = constraint

    def discriminator_loss(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> DiscriminatorLoss:
        real_out = discriminator(real)
        fake_out = discriminator(fake)
        objective = self.objective.discriminator_loss(real_out, fake_out)
        penalty = self.penalty(discriminator, real, fake) if self.penalty else objective.new_zeros(())
        return DiscriminatorLoss(objective + penalty, objective, penalty, real_out.detach(), fake_out.detach())

    def generator_loss(self, discriminator: nn.Module, fake: Tensor, real: Tensor | None = None) -> Tensor:
        """G's loss on ``fake``; ``real`` (a real batch of the same size) is passed through D only for an objective
        that compares the two, so the other objectives' G step is unchanged."""
        if not self.objective.needs_real_in_generator_step:
            return self.objective.generator_loss(discriminator(fake))
        if real is None:
            raise ValueError(f"loss {self.name}: its G step needs a real batch")
        return self.objective.generator_loss(discriminator(fake), discriminator(real))

    def after_discriminator_step(self, discriminator: nn.Module, loss: DiscriminatorLoss) -> None:
        """After each D optimizer step: the constraint on D's weights, then the objective's state update from that
        step's ``loss``."""
        if self.constraint is not None:
            self.constraint.apply(discriminator)
        self.objective.after_discriminator_step(loss.real_out, loss.fake_out)

    def state_dict(self) -> dict[str, Any]:
        """The loss's training state, for GANModule's checkpoints (``gan_loss_state``)."""
        return {"objective": self.objective.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.objective.load_state_dict(state.get("objective", {}))

    def logged_values(self) -> dict[str, float]:
        """The state to log with the training metrics, by name (without the ``train/`` prefix)."""
        return self.objective.logged_values()
