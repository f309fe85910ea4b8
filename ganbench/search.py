"""Lucic et al.'s hyperparameter search through Hydra's Optuna sweeper: one Optuna study per dataset and phase that
covers several losses.

``conf/search/lucic_wide.yaml`` and ``lucic_narrow.yaml`` name ``suggest_trial`` as the sweeper's
``custom_search_space``. Trials are dealt to the losses in turn (trial t trains ``search.losses[t % L]``), so an
interrupted study has spent the same budget on every loss, and each loss's first trial is its default setting (no
hyperparameter override at all: the loss's own YAML decides). Later trials draw every hyperparameter from
``search.space``, with the loss's entries in ``search.per_loss`` added or replacing them.

A space entry is either a constant (fixed for every drawn trial, e.g. β1 = 0.5 in the narrow search) or a mapping
``{type: float|int|categorical, low, high, log, choices}``, the fields of hydra-optuna-sweeper's DistributionConfig.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf
from optuna.trial import Trial

from ganbench.errors import UserError
from ganbench.validate import ConfigError, validate_search_space


class SearchError(UserError, CompactHydraException):
    """A bad search definition, found while the sweeper draws trials: Hydra prints the message alone."""


LOSS_KEY = "loss"
TRIAL_KEY = "study.trial"
MAX_TRIALS = 1_000_000


def loss_of_trial(losses: list[str], trial_number: int) -> tuple[str, int]:
    """(loss, index of this trial among that loss's trials) for the study's trial ``trial_number``."""
    return losses[trial_number % len(losses)], trial_number // len(losses)


def space_for(search: DictConfig, loss: str) -> dict[str, Any]:
    """The loss's search space, keyed by the Hydra override each entry sets; a null entry is not searched."""
    space: dict[str, Any] = dict(OmegaConf.to_container(search.space, resolve=True))
    if (extra := search.per_loss.get(loss)) is not None:
        space |= OmegaConf.to_container(extra, resolve=True)
    return {key: spec for key, spec in space.items() if spec is not None}


def _suggest(trial: Trial, key: str, spec: Any) -> Any:
    """Draw one entry of the space (checked by ``validate_search_space``) with Optuna's public suggest API."""
    if not isinstance(spec, Mapping):
        return trial.suggest_categorical(key, [spec])  # a constant: Optuna returns it without sampling
    if spec["type"] == "categorical":
        return trial.suggest_categorical(key, list(spec["choices"]))
    suggest = trial.suggest_float if spec["type"] == "float" else trial.suggest_int
    return suggest(key, spec["low"], spec["high"], log=bool(spec.get("log", False)))


def _fix(trial: Trial, **values: Any) -> None:
    """Parameters this study decides rather than the sampler: Optuna's mechanism behind ``enqueue_trial``."""
    trial.set_system_attr("fixed_params", dict(trial.system_attrs.get("fixed_params", {})) | values)


def suggest_trial(cfg: DictConfig, trial: Trial) -> None:
    """hydra-optuna-sweeper's ``custom_search_space`` hook: choose this trial's loss and draw its hyperparameters."""
    losses = list(cfg.search.losses)
    known = GlobalHydra.instance().config_loader().get_group_options("loss")
    if not losses or set(losses) - set(known):
        raise SearchError(
            f"search.losses={losses} must name losses of conf/loss/ ({', '.join(known)}), "
            "e.g. search.losses=[ns,wgan_gp]"
        )
    if LOSS_KEY in trial.user_attrs:
        raise SearchError(
            f"a search deals its trials to the losses in search.losses ({','.join(losses)}); "
            "choose them with search.losses=[...] instead of loss=..."
        )
    try:
        validate_search_space(cfg.search)
    except ConfigError as error:
        raise SearchError(str(error)) from error
    loss, index = loss_of_trial(losses, trial.number)
    _fix(trial, **{LOSS_KEY: loss, TRIAL_KEY: index})
    trial.suggest_categorical(LOSS_KEY, losses)
    trial.suggest_int(TRIAL_KEY, 0, MAX_TRIALS)
    if index == 0:
        return
    for key, spec in space_for(cfg.search, loss).items():
        _suggest(trial, key, spec)
