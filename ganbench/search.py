"""Lucic et al.'s hyperparameter search: one Optuna study per dataset and phase that covers several losses, run by
ganbench's sweeper (``hydra/sweeper=ganbench_search``, ``hydra_plugins/ganbench_sweeper/``) through Optuna's
ask-and-tell interface.

Trials are dealt to the losses in turn (trial t trains ``search.losses[t % L]``), so an interrupted study has spent
the same budget on every loss, and each loss's first trial is its default setting (no hyperparameter override at all:
the loss's own YAML decides). Later trials draw every hyperparameter from ``search.space``, with the loss's entries
in ``search.per_loss`` added or replacing them. The loss and the trial's index are enqueued as fixed parameters
(``Study.enqueue_trial``), so they are parameters of the study that a model-based sampler such as TPE sees.

A space entry is either a constant (fixed for every drawn trial, e.g. β1 = 0.5 in the narrow search; kept as a user
attribute of the trial, not a parameter, so that a loss may fix a key that the others search) or a mapping
``{type: float|int|categorical, low, high, log, choices}``. Optuna needs one set of choices per categorical parameter
of a study, so every loss that searches a categorical key must give it the same choices.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf
from optuna.samplers import BaseSampler
from optuna.trial import Trial, TrialState

from ganbench.errors import UserError
from ganbench.validate import ConfigError, validate_search_space

log = logging.getLogger(__name__)


class SearchError(UserError, CompactHydraException):
    """A bad search definition, found before any trial runs: Hydra prints the message alone."""


LOSS_KEY = "loss"
TRIAL_KEY = "study.trial"
MAX_TRIALS = 1_000_000
RESULTS_FILE = "optimization_results.yaml"


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
    """Draw one entry of the space (checked by ``validate_search_space``) with Optuna's public suggest API; a
    constant is recorded with the trial, not drawn."""
    if not isinstance(spec, Mapping):
        trial.set_user_attr(key, spec)
        return spec
    if spec["type"] == "categorical":
        return trial.suggest_categorical(key, list(spec["choices"]))
    suggest = trial.suggest_float if spec["type"] == "float" else trial.suggest_int
    return suggest(key, spec["low"], spec["high"], log=bool(spec.get("log", False)))


def search_losses(search: DictConfig, known_losses: Sequence[str]) -> list[str]:
    """``search.losses``, once the losses and every range of the space are checked: a refusal comes before any run."""
    losses = list(search.losses)
    if not losses or set(losses) - set(known_losses):
        raise SearchError(
            f"search.losses={losses} must name losses of conf/loss/ ({', '.join(known_losses)}), "
            "e.g. search.losses=[ns,wgan_gp]"
        )
    try:
        validate_search_space(search)
    except ConfigError as error:
        raise SearchError(str(error)) from error
    _check_categorical_choices(search, losses)
    return losses


def _check_categorical_choices(search: DictConfig, losses: list[str]) -> None:
    """Refuse, before any run, a categorical key whose choices differ between losses (Optuna would fail mid-study)."""
    first: dict[str, tuple[str, list[Any]]] = {}
    for loss in losses:
        for key, spec in space_for(search, loss).items():
            if not (isinstance(spec, Mapping) and spec["type"] == "categorical"):
                continue
            seen_loss, seen_choices = first.setdefault(key, (loss, list(spec["choices"])))
            if list(spec["choices"]) != seen_choices:
                raise SearchError(
                    f"search space {key}: {loss} draws from {list(spec['choices'])} and {seen_loss} from "
                    f"{seen_choices}; one study needs the same choices for every loss: give those, or a constant "
                    f"(search.per_loss.{loss}.{key}=<value>)"
                )


def trial_settings(trial: Trial) -> dict[str, Any]:
    """Everything a trial sets: its drawn parameters and the space's constants."""
    return {**trial.params, **trial.user_attrs}


def draw_trial(study: optuna.Study, search: DictConfig, losses: list[str]) -> Trial:
    """Ask the study for its next trial: the loss and index it is dealt, then (after trial 0) the loss's space."""
    loss, index = loss_of_trial(losses, len(study.trials))
    study.enqueue_trial({LOSS_KEY: loss, TRIAL_KEY: index})
    trial = study.ask()
    trial.suggest_categorical(LOSS_KEY, losses)
    trial.suggest_int(TRIAL_KEY, 0, MAX_TRIALS)
    if index > 0:
        for key, spec in space_for(search, loss).items():
            _suggest(trial, key, spec)
    return trial


def check_command_line(arguments: list[str], losses: list[str], loader: ConfigLoader) -> None:
    """A search's command line fixes settings; the trials' losses and ranges come from ``search.*`` alone."""
    for override in OverridesParser.create(config_loader=loader).parse_overrides(arguments):
        if override.get_key_element() == LOSS_KEY:
            raise SearchError(
                f"a search deals its trials to the losses in search.losses ({','.join(losses)}); "
                "choose them with search.losses=[...] instead of loss=..."
            )
        if override.is_sweep_override():
            raise SearchError(
                f"{override.input_line}: a search draws its trials from search.space; give a range there, e.g. "
                "'search.space.optim.lr={type:float,low:1e-4,high:1e-2,log:true}', or a constant as key=value"
            )


@dataclass
class Study:
    """An in-memory Optuna study with the search's rules. Relaunching the same command draws the same trials (the
    sampler's seed is fixed, and the runs that finished earlier return their recorded objective), so a study resumes
    without a database."""

    optuna_study: optuna.Study
    search: DictConfig
    losses: list[str]

    @classmethod
    def create(
        cls, search: DictConfig, arguments: list[str], loader: ConfigLoader, sampler: BaseSampler, direction: str
    ) -> Study:
        """The study of the search ``search``, once it and the command line ``arguments`` are checked."""
        losses = search_losses(search, loader.get_group_options("loss"))
        check_command_line(arguments, losses, loader)
        return cls(optuna.create_study(sampler=sampler, direction=direction), search, losses)

    @property
    def trials_drawn(self) -> int:
        return len(self.optuna_study.trials)

    def draw(self) -> Trial:
        return draw_trial(self.optuna_study, self.search, self.losses)

    @staticmethod
    def overrides(trial: Trial) -> list[str]:
        """The trial as Hydra overrides of the run's config."""
        return [f"{key}={value}" for key, value in trial_settings(trial).items()]

    def tell(self, trial: Trial, objective: float | None) -> None:
        """The run's objective (a failed or diverged run reports the protocol's worst score); None fails the trial: a
        job that gave no result at all (ganbench.sweep), and the study goes on."""
        if objective is not None:
            self.optuna_study.tell(trial, objective)
            return
        self.optuna_study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d (%s) gave no result", trial.number, " ".join(self.overrides(trial)))

    def save_results(self, sweep_dir: Path) -> None:
        """The best trial, as ``optimization_results.yaml`` next to the runs (none when every trial failed)."""
        completed = self.optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if completed:
            best = self.optuna_study.best_trial
            results = {"name": "ganbench_search", "best_params": trial_settings(best), "best_value": best.value}
            OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
