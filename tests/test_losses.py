"""Objectives, penalties and constraints against values worked out by hand (plain Python math, not torch)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from ganbench.losses import (
    BoundaryEquilibrium,
    DiscriminatorLoss,
    DraganPenalty,
    GANLoss,
    GradientPenalty,
    Hinge,
    LeastSquares,
    Minimax,
    NonSaturating,
    R1Penalty,
    R1R2Penalty,
    R2Penalty,
    RelativisticAverage,
    RelativisticAverageHinge,
    RelativisticAverageLeastSquares,
    RelativisticPairing,
    Wasserstein,
    WeightClipping,
    input_gradient,
)
from ganbench.nets.infogan import InfoGANDiscriminator
from ganbench.nets.mlp import MLPDiscriminator

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]
TOL = 1e-6


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def logits(values: list[float], requires_grad: bool = False) -> Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def bce(logit: float, target: float) -> float:
    """−[t log σ(l) + (1 − t) log(1 − σ(l))] = t·softplus(−l) + (1 − t)·softplus(l)."""
    return -(target * math.log(sigmoid(logit)) + (1.0 - target) * math.log(1.0 - sigmoid(logit)))


# --------------------------------------------------------------------------------------------------- objectives


@pytest.mark.parametrize("real_label", [1.0, 0.9])
@pytest.mark.parametrize("objective_cls", [NonSaturating, Minimax])
def test_cross_entropy_discriminator_loss(objective_cls: type, real_label: float) -> None:
    expected = mean([bce(x, real_label) for x in REAL]) + mean([bce(x, 0.0) for x in FAKE])
    loss = objective_cls(real_label=real_label).discriminator_loss(logits(REAL), logits(FAKE))
    assert loss.item() == pytest.approx(expected, abs=TOL)


def test_label_smoothing_changes_discriminator_loss() -> None:
    plain = NonSaturating().discriminator_loss(logits(REAL), logits(FAKE)).item()
    smoothed = NonSaturating(real_label=0.9).discriminator_loss(logits(REAL), logits(FAKE)).item()
    # Only the real term changes: 0.1 · mean(softplus(x) − softplus(−x)) = 0.1 · mean(x) over the real logits.
    assert smoothed - plain == pytest.approx(0.1 * mean(REAL), abs=TOL)


def test_non_saturating_generator_loss() -> None:
    # −log D(G(z)) = −log σ(l)
    expected = mean([-math.log(sigmoid(x)) for x in FAKE])
    assert NonSaturating().generator_loss(logits(FAKE)).item() == pytest.approx(expected, abs=TOL)


def test_minimax_generator_loss() -> None:
    # log(1 − D(G(z))) = log(1 − σ(l))
    expected = mean([math.log(1.0 - sigmoid(x)) for x in FAKE])
    assert Minimax().generator_loss(logits(FAKE)).item() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_least_squares_unbounded(real_label: float) -> None:
    objective = LeastSquares(real_label=real_label)
    expected_d = 0.5 * (mean([(x - real_label) ** 2 for x in REAL]) + mean([x**2 for x in FAKE]))
    expected_g = 0.5 * mean([(x - 1.0) ** 2 for x in FAKE])
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(expected_d, abs=TOL)
    assert objective.generator_loss(logits(FAKE)).item() == pytest.approx(expected_g, abs=TOL)


def test_least_squares_unbounded_literal_values() -> None:
    # 0.5 · ((1 + 4)/2 + (0.25 + 9)/2) and 0.5 · (0.25 + 16)/2
    objective = LeastSquares()
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(3.5625, abs=TOL)
    assert objective.generator_loss(logits(FAKE)).item() == pytest.approx(4.0625, abs=TOL)


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_least_squares_with_sigmoid(real_label: float) -> None:
    objective = LeastSquares(real_label=real_label, apply_sigmoid=True)
    expected_d = 0.5 * (mean([(sigmoid(x) - real_label) ** 2 for x in REAL]) + mean([sigmoid(x) ** 2 for x in FAKE]))
    expected_g = 0.5 * mean([(sigmoid(x) - 1.0) ** 2 for x in FAKE])
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(expected_d, abs=TOL)
    assert objective.generator_loss(logits(FAKE)).item() == pytest.approx(expected_g, abs=TOL)


def test_wasserstein() -> None:
    # D: mean(fake) − mean(real) = −1.25 − 0.5; G: −mean(fake) = 1.25
    objective = Wasserstein()
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(-1.75, abs=TOL)
    assert objective.generator_loss(logits(FAKE)).item() == pytest.approx(1.25, abs=TOL)


def test_hinge() -> None:
    # D: mean(relu(1 − 2), relu(1 + 1)) + mean(relu(1 + 0.5), relu(1 − 3)) = 1 + 0.75; G: −mean(fake) = 1.25
    objective = Hinge()
    expected_d = mean([max(0.0, 1.0 - x) for x in REAL]) + mean([max(0.0, 1.0 + x) for x in FAKE])
    assert expected_d == pytest.approx(1.75)
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(expected_d, abs=TOL)
    assert objective.generator_loss(logits(FAKE)).item() == pytest.approx(1.25, abs=TOL)


# Relativistic objectives (Jolicoeur-Martineau 2018) on REAL = [2, −1], FAKE = [0.5, −3]: means 0.5 and −1.25.


def test_relativistic_pairing_compares_each_real_with_its_fake() -> None:
    # D: mean −log σ(C(x_r,i) − C(x_f,i)) over the pairs (2 − 0.5, −1 + 3); G: the same with the roles swapped
    expected_d = mean([-math.log(sigmoid(r - f)) for r, f in zip(REAL, FAKE, strict=True)])
    expected_g = mean([-math.log(sigmoid(f - r)) for r, f in zip(REAL, FAKE, strict=True)])
    objective = RelativisticPairing()
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(expected_d, abs=TOL)
    assert objective.generator_loss(logits(FAKE), logits(REAL)).item() == pytest.approx(expected_g, abs=TOL)


def test_relativistic_average_standard() -> None:
    # D: −E log σ(C(x_r) − E C(x_f)) − E log(1 − σ(C(x_f) − E C(x_r)))
    expected_d = mean([-math.log(sigmoid(r - mean(FAKE))) for r in REAL])
    expected_d += mean([-math.log(1.0 - sigmoid(f - mean(REAL))) for f in FAKE])
    expected_g = mean([-math.log(sigmoid(f - mean(REAL))) for f in FAKE])
    expected_g += mean([-math.log(1.0 - sigmoid(r - mean(FAKE))) for r in REAL])
    objective = RelativisticAverage()
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(expected_d, abs=TOL)
    assert objective.generator_loss(logits(FAKE), logits(REAL)).item() == pytest.approx(expected_g, abs=TOL)


def test_relativistic_average_least_squares_literal_values() -> None:
    # D: mean((2 + 1.25 − 1)², (−1 + 1.25 − 1)²) + mean((0.5 − 0.5 + 1)², (−3 − 0.5 + 1)²) = 2.8125 + 3.625
    # G: mean((0.5 − 0.5 − 1)², (−3 − 0.5 − 1)²) + mean((2 + 1.25 + 1)², (−1 + 1.25 + 1)²) = 10.625 + 9.8125
    objective = RelativisticAverageLeastSquares()
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(6.4375, abs=TOL)
    assert objective.generator_loss(logits(FAKE), logits(REAL)).item() == pytest.approx(20.4375, abs=TOL)


def test_relativistic_average_hinge_literal_values() -> None:
    # D: mean(relu(1 − 3.25), relu(1 − 0.25)) + mean(relu(1 + 0), relu(1 − 3.5)) = 0.375 + 0.5
    # G: mean(relu(1 − 0), relu(1 + 3.5)) + mean(relu(1 + 3.25), relu(1 + 0.25)) = 2.75 + 2.75
    objective = RelativisticAverageHinge()
    assert objective.discriminator_loss(logits(REAL), logits(FAKE)).item() == pytest.approx(0.875, abs=TOL)
    assert objective.generator_loss(logits(FAKE), logits(REAL)).item() == pytest.approx(5.5, abs=TOL)


@pytest.mark.parametrize(
    "objective_cls",
    [RelativisticPairing, RelativisticAverage, RelativisticAverageLeastSquares, RelativisticAverageHinge],
)
def test_a_relativistic_generator_loss_without_real_outputs_is_refused(objective_cls: type) -> None:
    assert objective_cls.needs_real_in_generator_step
    with pytest.raises(ValueError, match="needs D's output on a real batch"):
        objective_cls().generator_loss(logits(FAKE))


SATURATED = [-10.0, -12.0, -15.0]


def test_minimax_generator_gradient_vanishes_when_discriminator_wins() -> None:
    fake_out = logits(SATURATED, requires_grad=True)
    Minimax().generator_loss(fake_out).backward()
    n = len(SATURATED)
    for grad, logit in zip(fake_out.grad.tolist(), SATURATED, strict=True):
        assert grad == pytest.approx(-sigmoid(logit) / n, rel=1e-6, abs=1e-12)
        assert abs(grad) < 1e-4


def test_non_saturating_generator_gradient_survives_when_discriminator_wins() -> None:
    fake_out = logits(SATURATED, requires_grad=True)
    NonSaturating().generator_loss(fake_out).backward()
    n = len(SATURATED)
    for grad, logit in zip(fake_out.grad.tolist(), SATURATED, strict=True):
        assert grad == pytest.approx(-(1.0 - sigmoid(logit)) / n, abs=TOL)
        assert grad == pytest.approx(-1.0 / n, abs=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("objective_cls", [Minimax, NonSaturating])
def test_generator_losses_are_finite_at_extreme_logits(objective_cls: type, dtype: torch.dtype) -> None:
    fake_out = torch.tensor([100.0, -100.0], dtype=dtype, requires_grad=True)
    loss = objective_cls().generator_loss(fake_out)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(fake_out.grad).all()
    # softplus(100) = 100 and softplus(−100) ≈ 0, so both losses are ±100/2 over the two logits.
    expected = -50.0 if objective_cls is Minimax else 50.0
    assert loss.item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("objective_cls", [Minimax, NonSaturating])
def test_discriminator_cross_entropy_is_finite_at_extreme_logits(objective_cls: type) -> None:
    loss = objective_cls().discriminator_loss(torch.tensor([100.0, -100.0]), torch.tensor([100.0, -100.0]))
    assert torch.isfinite(loss)
    # real: mean(softplus(−100), softplus(100)) = 50; fake: mean(softplus(100), softplus(−100)) = 50
    assert loss.item() == pytest.approx(100.0, abs=1e-4)


# ------------------------------------------------------------------------------------------ BEGAN (stateful objective)
# D's outputs are realness scores −L (L: an example's L1 reconstruction error), so L = −score.
BEGAN_REAL = [-0.2, -0.4]  # L(x): 0.2, 0.4 → mean 0.3
BEGAN_FAKE = [-0.5, -0.9]  # L(G(z)): 0.5, 0.9 → mean 0.7


def test_began_discriminator_and_generator_losses() -> None:
    objective = BoundaryEquilibrium(gamma=0.5, lambda_k=0.1, k_init=0.25)
    d_loss = objective.discriminator_loss(logits(BEGAN_REAL), logits(BEGAN_FAKE))
    assert d_loss.item() == pytest.approx(0.3 - 0.25 * 0.7, abs=TOL)  # L(x) − k·L(G(z))
    assert objective.generator_loss(logits(BEGAN_FAKE)).item() == pytest.approx(0.7, abs=TOL)  # L(G(z))
    assert BoundaryEquilibrium().discriminator_loss(logits(BEGAN_REAL), logits(BEGAN_FAKE)).item() == pytest.approx(
        0.3, abs=TOL
    ), "k_0 = 0: D only learns to reconstruct real data"


def test_began_discriminator_gradient_weights_the_fake_term_by_k() -> None:
    real, fake = logits(BEGAN_REAL, requires_grad=True), logits(BEGAN_FAKE, requires_grad=True)
    BoundaryEquilibrium(k_init=0.25).discriminator_loss(real, fake).backward()
    assert real.grad.tolist() == pytest.approx([-0.5, -0.5])  # ∂(−mean score)/∂score
    assert fake.grad.tolist() == pytest.approx([0.125, 0.125])  # k / n


def test_began_k_update_and_convergence_measure() -> None:
    objective = BoundaryEquilibrium(gamma=0.5, lambda_k=0.1, k_init=0.25)
    assert math.isnan(objective.logged_values()["convergence"])  # no D step yet
    objective.after_discriminator_step(logits(BEGAN_REAL), logits(BEGAN_FAKE))
    balance = 0.5 * 0.3 - 0.7  # γ L(x) − L(G(z)) = −0.55
    assert objective.k == pytest.approx(0.25 + 0.1 * balance, abs=TOL)  # 0.195
    assert objective.convergence == pytest.approx(0.3 + abs(balance), abs=TOL)  # M_global = 0.85
    assert objective.logged_values() == {"began_k": objective.k, "convergence": objective.convergence}
    objective.after_discriminator_step(logits(BEGAN_REAL), logits(BEGAN_FAKE))  # the update accumulates
    assert objective.k == pytest.approx(0.25 + 2 * 0.1 * balance, abs=TOL)  # 0.14


def test_began_k_is_clipped_to_zero_and_one() -> None:
    low = BoundaryEquilibrium(gamma=0.5, lambda_k=0.1, k_init=0.01)
    low.after_discriminator_step(logits(BEGAN_REAL), logits(BEGAN_FAKE))  # 0.01 − 0.055 < 0
    assert low.k == 0.0
    assert low.convergence == pytest.approx(0.85, abs=TOL)  # M does not depend on k
    high = BoundaryEquilibrium(gamma=1.0, lambda_k=0.1, k_init=0.99)
    high.after_discriminator_step(logits([-2.0, -2.0]), logits([-0.5]))  # 0.99 + 0.1·(2 − 0.5) > 1
    assert high.k == 1.0
    assert high.convergence == pytest.approx(2.0 + 1.5, abs=TOL)


def test_began_state_round_trip() -> None:
    objective = BoundaryEquilibrium(k_init=0.3)
    assert objective.state_dict() == {"k": 0.3}
    fresh = BoundaryEquilibrium()
    fresh.load_state_dict(objective.state_dict())
    assert fresh.k == 0.3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"gamma": 1.5}, "gamma must be in"), ({"lambda_k": 0.0}, "lambda_k must be > 0"), ({"k_init": -0.1}, "k_init")],
)
def test_began_refuses_hyperparameters_out_of_range(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BoundaryEquilibrium(**arguments)


@pytest.mark.parametrize("objective_cls", [NonSaturating, Wasserstein, RelativisticPairing])
def test_stateless_objectives_have_no_state_and_log_nothing(objective_cls: type) -> None:
    objective = objective_cls()
    objective.after_discriminator_step(logits(REAL), logits(FAKE))
    assert objective.state_dict() == {} and objective.logged_values() == {}
    objective.load_state_dict({})
    with pytest.raises(ValueError, match="has no state to load"):
        objective.load_state_dict({"k": 0.5})


def test_gan_loss_forwards_the_discriminator_step_to_the_objective_and_its_state() -> None:
    loss = GANLoss("began", BoundaryEquilibrium(gamma=0.5, lambda_k=0.1, k_init=0.25))
    zero = torch.zeros(())
    step = DiscriminatorLoss(zero, zero, zero, real_out=logits(BEGAN_REAL), fake_out=logits(BEGAN_FAKE))
    loss.after_discriminator_step(nn.Linear(2, 1), step)
    assert loss.objective.k == pytest.approx(0.195, abs=TOL)
    assert loss.state_dict() == {"objective": {"k": loss.objective.k}}
    assert loss.logged_values() == {"began_k": loss.objective.k, "convergence": pytest.approx(0.85, abs=TOL)}
    restored = GANLoss("began", BoundaryEquilibrium())
    restored.load_state_dict(loss.state_dict())
    assert restored.objective.k == loss.objective.k
    assert GANLoss("ns", NonSaturating()).state_dict() == {"objective": {}}


# ---------------------------------------------------------------------------------------------------- penalties


W = [1.8, 2.4]  # ‖w‖ = 3


def linear_critic() -> nn.Linear:
    """D(x) = w·x, whose input gradient is w everywhere."""
    critic = nn.Linear(len(W), 1, bias=False).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([W], dtype=torch.float64))
    return critic


class QuadraticCritic(nn.Module):
    """D(x) = Σ x², whose input gradient is 2x."""

    def forward(self, x: Tensor) -> Tensor:
        return x.pow(2).sum(dim=1)


def batches(seed: int, n: int = 5) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn((n, len(W)), generator=generator, dtype=torch.float64)
    fake = 3.0 * torch.randn((n, len(W)), generator=generator, dtype=torch.float64) + 1.0
    return real, fake


def norm_sq(vector: list[float]) -> float:
    return sum(v * v for v in vector)


def unit_gradient_penalty(grad_norm_sq: float, eps: float = 1e-4) -> float:
    return (math.sqrt(eps + grad_norm_sq) - 1.0) ** 2


@pytest.mark.parametrize("penalty_cls", [GradientPenalty, DraganPenalty])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unit_gradient_penalties_on_linear_critic(penalty_cls: type, seed: int) -> None:
    weight = 10.0
    real, fake = batches(seed)
    value = penalty_cls(weight=weight)(linear_critic(), real, fake)
    assert norm_sq(W) == pytest.approx(9.0)
    assert value.item() == pytest.approx(weight * unit_gradient_penalty(norm_sq(W)), abs=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_r1_on_linear_critic(seed: int) -> None:
    real, fake = batches(seed)
    value = R1Penalty(weight=10.0)(linear_critic(), real, fake)
    assert value.item() == pytest.approx(10.0 * 0.5 * norm_sq(W), abs=TOL)  # 45


def test_r1_on_quadratic_critic_uses_real_batch() -> None:
    real_rows = [[1.0, 2.0], [-0.5, 0.0], [3.0, -1.0]]
    real = torch.tensor(real_rows, dtype=torch.float64)
    fake = torch.full_like(real, 7.0)
    expected = 0.5 * mean([norm_sq([2.0 * v for v in row]) for row in real_rows])  # 0.5 · (20 + 1 + 40)/3 = 61/6
    value = R1Penalty(weight=1.0)(QuadraticCritic(), real, fake)
    assert value.item() == pytest.approx(expected, abs=TOL)
    # A different fake batch must not matter: R1 looks at real data only.
    assert R1Penalty(weight=1.0)(QuadraticCritic(), real, -fake).item() == pytest.approx(expected, abs=TOL)


def test_r2_on_quadratic_critic_uses_fake_batch() -> None:
    fake_rows = [[1.0, 2.0], [-0.5, 0.0], [3.0, -1.0]]
    fake = torch.tensor(fake_rows, dtype=torch.float64)
    real = torch.full_like(fake, 7.0)
    expected = 0.5 * mean([norm_sq([2.0 * v for v in row]) for row in fake_rows])  # 61/6, as R1 on these rows
    assert R2Penalty(weight=1.0)(QuadraticCritic(), real, fake).item() == pytest.approx(expected, abs=TOL)
    assert R2Penalty(weight=1.0)(QuadraticCritic(), -real, fake).item() == pytest.approx(expected, abs=TOL)


def test_r1_r2_is_gamma_over_two_times_both_squared_norms() -> None:
    real = torch.tensor([[1.0, 2.0], [-0.5, 0.0]], dtype=torch.float64)  # ‖2x‖²: 20, 1
    fake = torch.tensor([[3.0, -1.0], [0.0, 0.5]], dtype=torch.float64)  # ‖2x‖²: 40, 1
    expected = 0.1 / 2 * (mean([20.0, 1.0]) + mean([40.0, 1.0]))  # γ = 0.1
    assert R1R2Penalty(weight=0.1)(QuadraticCritic(), real, fake).item() == pytest.approx(expected, abs=TOL)


def test_gradient_penalty_evaluates_between_real_and_fake() -> None:
    # With fake == real every interpolate is the real point itself, whatever α is drawn.
    rows = [[1.0, 2.0], [-0.5, 0.25], [0.3, -1.0]]
    real = torch.tensor(rows, dtype=torch.float64)
    expected = mean([unit_gradient_penalty(norm_sq([2.0 * v for v in row])) for row in rows])
    value = GradientPenalty(weight=1.0)(QuadraticCritic(), real, real.clone())
    assert value.item() == pytest.approx(expected, abs=TOL)


def test_gradient_penalty_interpolates_stay_on_the_segment() -> None:
    # real = 0, fake = x: x̂ = αx with α ∈ [0, 1), so ‖∇D(x̂)‖ = 2α‖x‖ ∈ [0, 2‖x‖) and each term (·−1)² ≤ max(1, …).
    torch.manual_seed(0)
    fake = torch.tensor([[10.0, 0.0]] * 64, dtype=torch.float64)
    real = torch.zeros_like(fake)
    value = GradientPenalty(weight=1.0)(QuadraticCritic(), real, fake).item()
    upper = unit_gradient_penalty(20.0**2)  # α → 1
    assert 0.0 < value < upper
    # At the real point itself the norm would be ~0, giving (√eps − 1)² ≈ 0.98; at the fake point 19² = 361.
    # A uniform α gives E[(20α − 1)²] ≈ 400/3 − 20 + 1 ≈ 114; allow generous sampling noise for 64 draws.
    assert 60.0 < value < 180.0


def test_dragan_evaluates_at_real_data_when_it_has_no_spread() -> None:
    # std(real) = 0, so the perturbation 0.5·std·u vanishes and the penalty is taken at the real points.
    real = torch.full((4, 2), 0.75, dtype=torch.float64)
    fake = torch.randn(4, 2, dtype=torch.float64)
    expected = unit_gradient_penalty(norm_sq([1.5, 1.5]))
    value = DraganPenalty(weight=3.0)(QuadraticCritic(), real, fake)
    assert value.item() == pytest.approx(3.0 * expected, abs=TOL)


def test_gradient_penalty_backpropagates_to_critic_weights() -> None:
    weight, eps = 10.0, 1e-4
    critic = linear_critic()
    real, fake = batches(0)
    GradientPenalty(weight=weight, eps=eps)(critic, real, fake).backward()
    # d/dw λ(s − 1)² with s = sqrt(eps + ‖w‖²) is 2λ(s − 1)·w/s
    s = math.sqrt(eps + norm_sq(W))
    expected = [2.0 * weight * (s - 1.0) * w / s for w in W]
    assert critic.weight.grad is not None
    assert critic.weight.grad.flatten().tolist() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("penalty_cls", [GradientPenalty, DraganPenalty, R1Penalty])
def test_penalties_do_not_backpropagate_into_the_samples(penalty_cls: type) -> None:
    # A quadratic critic's input gradient depends on where it is taken, so a leak into real/fake would show.
    real, fake = batches(0)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    value = penalty_cls(weight=10.0)(QuadraticCritic(), real, fake)
    assert value.item() > 0.0
    if value.requires_grad:
        value.backward()
    assert real.grad is None and fake.grad is None


# -------------------------------------------------------------------------------------------------- constraints


def scaled_discriminator(scale: float = 100.0) -> MLPDiscriminator:
    torch.manual_seed(0)
    discriminator = MLPDiscriminator(hidden_dim=16, num_hidden=2)
    with torch.no_grad():
        for param in discriminator.parameters():
            param.mul_(scale)
    return discriminator


def test_weight_clipping_clamps_only_what_is_outside() -> None:
    clip = 5.0
    discriminator = scaled_discriminator()
    before = [p.detach().clone() for p in discriminator.parameters()]
    inside = [b.abs() <= clip for b in before]
    assert any(m.any() for m in inside) and not all(m.all() for m in inside)  # both kinds are present

    WeightClipping(clip).apply(discriminator)

    for old, new, keep in zip(before, discriminator.parameters(), inside, strict=True):
        assert new.min() >= -clip and new.max() <= clip
        assert torch.equal(new[keep], old[keep])
        assert torch.equal(new[~keep], clip * old[~keep].sign())


def test_weight_clipping_with_small_clip_bounds_every_parameter() -> None:
    discriminator = scaled_discriminator()
    WeightClipping(0.01).apply(discriminator)
    for param in discriminator.parameters():
        largest = param.detach().abs().max().item()
        assert largest <= 0.01
        assert largest == pytest.approx(0.01)


# ------------------------------------------------------------------------------------------------- composition


def test_gan_loss_total_is_objective_plus_penalty() -> None:
    critic = linear_critic()
    real, fake = batches(3)
    loss = GANLoss("r1", NonSaturating(), penalty=R1Penalty(weight=2.0)).discriminator_loss(critic, real, fake)

    w = torch.tensor(W, dtype=torch.float64)
    real_out, fake_out = (real @ w).tolist(), (fake @ w).tolist()
    expected_objective = mean([bce(x, 1.0) for x in real_out]) + mean([bce(x, 0.0) for x in fake_out])
    assert loss.objective.item() == pytest.approx(expected_objective, abs=TOL)
    assert loss.penalty.item() == pytest.approx(2.0 * 0.5 * norm_sq(W), abs=TOL)
    assert loss.total.item() == pytest.approx(loss.objective.item() + loss.penalty.item(), abs=TOL)
    assert loss.real_out.flatten().tolist() == pytest.approx(real_out, abs=TOL)
    assert loss.fake_out.flatten().tolist() == pytest.approx(fake_out, abs=TOL)
    assert not loss.real_out.requires_grad and not loss.fake_out.requires_grad
    assert loss.total.requires_grad


def test_gan_loss_without_penalty_has_exact_zero_penalty() -> None:
    critic = linear_critic()
    real, fake = batches(4)
    loss = GANLoss("wgan", Wasserstein()).discriminator_loss(critic, real, fake)
    assert isinstance(loss.penalty, Tensor)
    assert loss.penalty.shape == ()
    assert loss.penalty.item() == 0.0
    assert torch.equal(loss.total, loss.objective)
    w = torch.tensor(W, dtype=torch.float64)
    assert loss.objective.item() == pytest.approx((fake @ w).mean().item() - (real @ w).mean().item(), abs=TOL)


def test_gan_loss_generator_loss_uses_the_objective_on_discriminator_output() -> None:
    critic = linear_critic()
    _, fake = batches(5)
    w = torch.tensor(W, dtype=torch.float64)
    expected = mean([-math.log(sigmoid(x)) for x in (fake @ w).tolist()])
    assert GANLoss("ns", NonSaturating()).generator_loss(critic, fake).item() == pytest.approx(expected, abs=TOL)


class CountingCritic(nn.Module):
    """The linear critic, counting its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.critic, self.calls = linear_critic(), 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.critic(x)


def test_only_a_relativistic_generator_step_passes_the_real_batch_through_d() -> None:
    real, fake = batches(6)
    w = torch.tensor(W, dtype=torch.float64)
    critic = CountingCritic()
    GANLoss("ns", NonSaturating()).generator_loss(critic, fake, real)
    assert critic.calls == 1  # as before the seam took a real batch: the same G step, bit for bit
    expected = mean([-math.log(sigmoid(f - r)) for r, f in zip((real @ w).tolist(), (fake @ w).tolist(), strict=True)])
    assert GANLoss("rsgan", RelativisticPairing()).generator_loss(critic, fake, real).item() == pytest.approx(
        expected, abs=TOL
    )
    assert critic.calls == 3
    with pytest.raises(ValueError, match="loss rsgan: its G step needs a real batch"):
        GANLoss("rsgan", RelativisticPairing()).generator_loss(critic, fake)


def _step_outputs(discriminator: nn.Module) -> DiscriminatorLoss:
    """A D step's record, as GANModule passes it after the optimizer step."""
    with torch.no_grad():
        out = discriminator(torch.zeros(2, 2))
    zero = torch.zeros(())
    return DiscriminatorLoss(zero, zero, zero, real_out=out, fake_out=out)


def test_after_discriminator_step_applies_the_constraint() -> None:
    discriminator = scaled_discriminator()
    loss = GANLoss("wgan", Wasserstein(), constraint=WeightClipping(0.01))
    loss.after_discriminator_step(discriminator, _step_outputs(discriminator))
    assert all(p.abs().max() <= 0.01 for p in discriminator.parameters())


def test_after_discriminator_step_without_constraint_leaves_weights_alone() -> None:
    discriminator = scaled_discriminator()
    before = [p.detach().clone() for p in discriminator.parameters()]
    GANLoss("ns", NonSaturating()).after_discriminator_step(discriminator, _step_outputs(discriminator))
    assert all(torch.equal(old, new) for old, new in zip(before, discriminator.parameters(), strict=True))


def test_input_gradient_under_a_bf16_autocast_is_the_fp32_gradient() -> None:
    """bf16-mixed runs the D step under autocast; the inner gradient ∂D/∂x of every gradient penalty is taken in fp32,
    forward and backward (with the backward left under the autocast: 3.7e-3 relative error here)."""
    torch.manual_seed(0)
    discriminator = InfoGANDiscriminator(batch_norm=False)
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    fp32 = input_gradient(discriminator, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = input_gradient(discriminator, real)
    assert mixed.dtype == torch.float32
    assert torch.linalg.vector_norm(mixed - fp32) <= 1e-5 * torch.linalg.vector_norm(fp32)
