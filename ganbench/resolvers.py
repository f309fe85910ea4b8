"""OmegaConf resolvers the configs use, registered when ganbench.train is imported (before Hydra composes)."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf


def optuna_direction(higher_is_better: bool) -> str:
    """The Optuna study direction of a protocol's primary metric (in prose: ganbench.analysis.study.better_label)."""
    return "maximize" if higher_is_better else "minimize"


def total_trials(losses: Sequence[str], trials_per_loss: int) -> int:
    """A study's Optuna trials: the same budget for every loss."""
    return len(losses) * int(trials_per_loss)


def num_classes(*, _root_: DictConfig) -> int | None:
    """The classes G and D are conditioned on: the dataset's with ``conditional=true``, else None (unconditional)."""
    return _root_.dataset.get("num_classes") if _root_.get("conditional") else None


def register() -> None:
    OmegaConf.register_new_resolver("ganbench.direction", optuna_direction, replace=True)
    OmegaConf.register_new_resolver("ganbench.total_trials", total_trials, replace=True)
    OmegaConf.register_new_resolver("ganbench.num_classes", num_classes, replace=True)
