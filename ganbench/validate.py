"""Range checks on a composed config, run before anything is built so a bad value never costs a training run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

from omegaconf import DictConfig, OmegaConf

from ganbench.batch_norm import CHOICES as BN_STATISTICS
from ganbench.errors import UserError


class ConfigError(UserError):
    """A config value outside its allowed range; the message names the key, the range and the value."""


@dataclass(frozen=True)
class Rule:
    key: str
    allowed: str
    check: Callable[[float], bool]
    integer: bool = False


RULES: tuple[Rule, ...] = (
    Rule("optim.lr", "> 0", lambda v: v > 0),
    Rule("optim.generator.lr", "> 0", lambda v: v > 0),
    Rule("optim.discriminator.lr", "> 0", lambda v: v > 0),
    Rule("training.n_critic", ">= 1", lambda v: v >= 1, integer=True),
    Rule("training.g_steps", ">= 1", lambda v: v >= 1, integer=True),
    Rule("dataset.batch_size", ">= 1", lambda v: v >= 1, integer=True),
    Rule("training.ema_decay", "in (0, 1)", lambda v: 0 < v < 1),
    Rule("training.checkpoint_every_n_g_steps", ">= 1", lambda v: v >= 1, integer=True),
    Rule("loss.penalty.weight", ">= 0", lambda v: v >= 0),
    Rule("loss.constraint.clip", "> 0", lambda v: v > 0),
    Rule("loss.objective.real_label", "in (0, 1]", lambda v: 0 < v <= 1),
    Rule("eval.num_samples", ">= 1", lambda v: v >= 1, integer=True),
    Rule("eval.every_n_g_steps", ">= 1", lambda v: v >= 1, integer=True),
    Rule("eval.standing_samples", ">= 1", lambda v: v >= 1, integer=True),
    Rule("eval.num_diagnostic_real", ">= 2", lambda v: v >= 2, integer=True),  # a spread needs two samples
    Rule("cpu_threads", ">= 1", lambda v: v >= 1, integer=True),
)
CHOICES: dict[str, tuple[str, ...]] = {"eval.generator_bn": BN_STATISTICS}


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that breaks a rule; keys absent from this config are skipped."""
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=None)
        if value is None:
            continue
        kind = "an integer" if rule.integer else "a number"
        is_number = isinstance(value, int if rule.integer else Real) and not isinstance(value, bool)
        if not is_number or not rule.check(value):
            raise ConfigError(
                f"{rule.key}={value!r} is invalid: it must be {kind} {rule.allowed}. "
                f"Fix it on the command line, e.g. `ganbench-train {rule.key}=<value>`."
            )
    for key, choices in CHOICES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in choices:
            raise ConfigError(f"{key}={value!r} is invalid: it must be one of {', '.join(choices)}.")


def _replays_command_line(trainer: DictConfig) -> bool:
    """Lightning's default DDP launcher starts ranks 1… by running the command line again."""
    strategy = trainer.get("strategy")
    if isinstance(strategy, str):
        return strategy.startswith("ddp") and "spawn" not in strategy and "fork" not in strategy
    if not isinstance(strategy, DictConfig) or not str(strategy.get("_target_", "")).endswith("DDPStrategy"):
        return False
    started_by_cluster = any("SLURMEnvironment" in str(p.get("_target_", "")) for p in trainer.get("plugins") or [])
    return strategy.get("start_method", "popen") == "popen" and not started_by_cluster


def validate_launch(cfg: DictConfig, in_multirun: bool) -> None:
    """Refuse the one combination that silently corrupts a sweep: DDP ranks re-executing a multirun's command line
    would replay the whole sweep (with the Optuna sweeper, with other hyperparameters) in every rank."""
    if in_multirun and _replays_command_line(cfg.trainer):
        raise ConfigError(
            "trainer.strategy re-executes the command line for each DDP rank, which inside a multirun replays the "
            "whole sweep in every rank. Use trainer=ddp (spawned ranks) on one machine, or launcher=slurm with "
            "trainer=slurm (ranks started by SLURM)."
        )
