"""OmegaConf resolvers the configs use, registered when ganbench.train is imported (before Hydra composes)."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import OmegaConf


def optuna_direction(higher_is_better: bool) -> str:
    """The Optuna study direction of a protocol's primary metric (in prose: ganbench.analysis.study.better_label)."""
    return "maximize" if higher_is_better else "minimize"


def total_trials(losses: Sequence[str], trials_per_loss: int) -> int:
    """A study's Optuna trials: the same budget for every loss."""
    return len(losses) * int(trials_per_loss)


def register() -> None:
    OmegaConf.register_new_resolver("ganbench.direction", optuna_direction, replace=True)
    OmegaConf.register_new_resolver("ganbench.total_trials", total_trials, replace=True)
