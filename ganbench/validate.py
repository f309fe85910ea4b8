"""Every value a user can type, checked before anything is built, so a typo never costs a run or becomes a result.

One table of rules, keyed by config key (``*`` matches one level: ``optim.*.lr`` is both networks' learning rate):
a number rule says its kind and range, a choice rule its options, a few rules a format. ``validate`` applies the
table to the composed config, then checks what depends on several keys or on the machine (the accelerator, the batch
split across processes); ``validate_search_space`` applies the same table to a search's ranges, so a search never
draws a value a run would refuse.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from lightning.fabric.connector import _PRECISION_INPUT
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganbench.batch_norm import CHOICES as BN_STATISTICS
from ganbench.errors import UserError
from ganbench.run_dir import flatten


class ConfigError(UserError):
    """A config value outside its allowed range; the message names the key, the range and the value."""


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, Real) and math.isfinite(value)


@dataclass(frozen=True)
class Number:
    """A finite number (or an integer) in a range; ``None`` ends are unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def admits(self, value: Any) -> bool:
        if not _is_number(value, self.integer):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def admits_interval(self, low: Any, high: Any) -> bool:
        """A continuous range drawn from: within the closed range (an open end is drawn with probability 0)."""
        closed = Number(self.low, self.high, integer=self.integer)
        return closed.admits(low) and closed.admits(high)

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        low, high = (_number_text(end) for end in (self.low, self.high))
        if self.low is not None and self.high is not None:
            return f"{kind} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        return f"{kind} {'<' if self.high_open else '<='} {high}" if self.high is not None else kind


def _number_text(value: float | None) -> str:
    return "" if value is None else f"{value:d}" if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def admits(self, value: Any) -> bool:
        return any(value == option and type(value) is type(option) for option in self.options)

    def __str__(self) -> str:
        return f"one of {', '.join(dict.fromkeys(str(option) for option in self.options))}"


@dataclass(frozen=True)
class Format:
    description: str
    matches: Callable[[Any], bool]

    def admits(self, value: Any) -> bool:
        return self.matches(value)

    def __str__(self) -> str:
        return self.description


Requirement = Number | Choice | Format
POSITIVE = Number(0, low_open=True)
COUNT = Number(1, integer=True)
NON_NEGATIVE = Number(0)
BETA = Number(0, 1, high_open=True)  # torch.optim.Adam's own constraint
_DURATION = re.compile(r"(\d+):([01]\d|2[0-3]):([0-5]\d):([0-5]\d)")  # Lightning Timer's DD:HH:MM:SS
_ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
_PRECISIONS = tuple(option for group in typing.get_args(_PRECISION_INPUT) for option in typing.get_args(group))


def _is_duration(value: Any) -> bool:
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    return match is not None and any(int(part) for part in match.groups())


def _is_devices(value: Any) -> bool:
    """Lightning's devices: a count, -1 (all), "auto", or a list of device indices."""
    if isinstance(value, list):
        return bool(value) and all(_is_number(index, integer=True) and index >= 0 for index in value)
    return value in ("auto", -1) or (_is_number(value, integer=True) and value >= 1)


RULES: dict[str, Requirement] = {
    "seed": Number(0, 2**32 - 1, integer=True),  # the range seed_everything accepts
    "cpu_threads": COUNT,
    "parallel_jobs": COUNT,
    "d_batch_norm": Choice((True, False)),
    "optim.lr": POSITIVE,
    "optim.*.lr": POSITIVE,
    "optim.beta1": BETA,
    "optim.beta2": BETA,
    "optim.*.betas": Format(
        "a pair of numbers in [0, 1)", lambda v: isinstance(v, list) and len(v) == 2 and all(map(BETA.admits, v))
    ),
    "optim.*.eps": POSITIVE,
    "optim.*.weight_decay": NON_NEGATIVE,
    "optim.*.alpha": BETA,
    "optim.*.momentum": NON_NEGATIVE,
    "training.n_critic": COUNT,
    "training.g_steps": COUNT,
    "training.ema_decay": Number(0, 1, low_open=True, high_open=True),
    "training.compile": Choice((True, False)),
    "training.checkpoint_every_n_g_steps": COUNT,
    "training.time_limit": Format('a duration "DD:HH:MM:SS" longer than 0, e.g. "00:03:45:00"', _is_duration),
    "model.*.latent_dim": COUNT,
    "model.*.data_dim": COUNT,
    "model.*.hidden": COUNT,
    "model.*.hidden_dim": COUNT,
    "model.*.num_hidden": COUNT,
    "model.*.base_channels": COUNT,
    "model.*.width": COUNT,
    "model.*.latent_distribution": Choice(("normal", "uniform")),
    "model.*.spectral_norm": Choice((True, False)),
    "model.*.embedding_dim": COUNT,  # an autoencoder D's bottleneck (BEGAN)
    "dataset.batch_size": COUNT,
    "dataset.num_workers": Number(0, integer=True),
    "dataset.image_size": COUNT,
    "dataset.channels": Choice((1, 3)),
    "dataset.num_images": Number(8, integer=True),  # every split of the triangles set needs an image
    "dataset.mixture.num_modes": COUNT,
    "dataset.mixture.std": POSITIVE,
    "dataset.mixture.radius": POSITIVE,
    "loss.penalty.weight": NON_NEGATIVE,
    "loss.constraint.clip": POSITIVE,
    "loss.objective.real_label": Number(0, 1, low_open=True),
    "loss.objective.gamma": Number(0, 1),  # BEGAN's diversity ratio γ
    "loss.objective.lambda_k": POSITIVE,  # BEGAN's learning rate of k_t
    "loss.objective.k_init": Number(0, 1),  # BEGAN's k_0 (k_t stays in [0, 1])
    "eval.num_samples": COUNT,
    "eval.every_n_g_steps": COUNT,
    "eval.standing_samples": COUNT,
    "eval.num_diagnostic_real": Number(2, integer=True),  # a spread needs two samples
    "eval.generator_bn": Choice(BN_STATISTICS),
    "eval.worst_score": Number(),
    "trainer.accelerator": Choice(_ACCELERATORS),
    "trainer.devices": Format('a number of devices >= 1, -1 (all), "auto" or a list of device indices', _is_devices),
    "trainer.num_nodes": COUNT,
    "trainer.precision": Choice(_PRECISIONS),
    "trainer.log_every_n_steps": COUNT,
}


def requirement_for(key: str) -> Requirement | None:
    """The rule of a dotted config key, if the table has one."""
    parts = key.split(".")
    for pattern, requirement in RULES.items():
        segments = pattern.split(".")
        if len(segments) == len(parts) and all(s in ("*", p) for s, p in zip(segments, parts, strict=True)):
            return requirement
    return None


def _invalid(key: str, value: Any, requirement: Requirement | str) -> ConfigError:
    return ConfigError(
        f"{key}={value!r} is invalid: it must be {requirement}. "
        f"Fix it on the command line, e.g. `ganbench-train {key}=<value>`."
    )


def _values(cfg: DictConfig) -> dict[str, Any]:
    """The config's values by dotted key, interpolations resolved; an unresolvable or missing value is bad input."""
    try:
        return flatten(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "a config value"
        reason = str(error).splitlines()[0]
        raise ConfigError(
            f"{key} cannot be resolved: {reason}. Fix the override that sets it or the key it refers to (e.g. an image "
            "model needs an image dataset)"
        ) from error


def _machine_checks(values: Mapping[str, Any]) -> Iterator[ConfigError]:
    """What the table cannot say alone: the accelerator this machine has, precision on the CPU, the batch split."""
    accelerator, devices = values.get("trainer.accelerator"), values.get("trainer.devices")
    wanted = devices if isinstance(devices, int) and devices > 0 else len(devices) if isinstance(devices, list) else 1
    if accelerator in ("gpu", "cuda") and torch.cuda.device_count() < wanted:
        found = torch.cuda.device_count()
        yield ConfigError(
            f"trainer.accelerator={accelerator} with trainer.devices={devices} needs {wanted} CUDA GPU(s), and this "
            f"machine has {found}. Use trainer=cpu here, or launch on a machine with GPUs"
        )
    if accelerator == "cpu" and str(values.get("trainer.precision")).startswith("16"):
        yield _invalid("trainer.precision", values["trainer.precision"], "32-true or bf16-mixed on the CPU")
    world_size = wanted * (values.get("trainer.num_nodes") or 1)
    batch = values.get("dataset.batch_size")
    if isinstance(batch, int) and batch % world_size:
        yield ConfigError(
            f"dataset.batch_size={batch} is not divisible by the {world_size} training processes (trainer.devices × "
            f"trainer.num_nodes); choose a multiple of {world_size}: it is the global batch, split across processes"
        )


def _conditional_checks(cfg: DictConfig) -> Iterator[ConfigError]:
    """A conditional run needs labels from the dataset and networks that read them (docs/conditional.md); a
    per-class metric needs a conditional run."""
    if not cfg.get("conditional"):
        for name, scorer in (cfg.get("eval", {}).get("scorers") or {}).items():
            if "intra_fid" in (scorer.get("metrics") or []):
                yield ConfigError(
                    f"eval.scorers.{name}.metrics has intra_fid, the FID per class of a class-conditional G: set "
                    "conditional=true, or drop intra_fid"
                )
        return
    dataset = cfg.get("dataset", {})
    if dataset.get("num_classes") is None:
        yield ConfigError(
            f"conditional=true needs class labels, and dataset={dataset.get('name')} has none: conditional runs train "
            "on the datasets whose config sets dataset.num_classes (ring, grid, mnist, fashion_mnist, cifar10)"
        )
    for node in ("generator", "discriminator", "encoder"):
        network = cfg.get("model", {}).get(node)
        if network is not None and "num_classes" not in network:
            yield ConfigError(
                f"conditional=true needs class-conditional networks, and model.{node} ({network.get('_target_')}) "
                "has none: conditional runs take a GAN loss (not began or vae) with model=mlp, mlp_image, infogan, "
                "infogan_cpu, dcgan or resnet"
            )


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that breaks its rule; keys absent from this config are skipped."""
    values = _values(cfg)
    for key, value in values.items():
        requirement = requirement_for(key)
        if requirement is not None and value is not None and not requirement.admits(value):
            raise _invalid(key, value, requirement)
    for error in (*_machine_checks(values), *_conditional_checks(cfg)):
        raise error
    if (search := cfg.get("search")) is not None:
        validate_search_space(search)


def _check_entry(key: str, spec: Any) -> None:
    """One search-space entry: a constant or {type: float|int|categorical, ...}, inside the key's own rule."""
    requirement = requirement_for(key)
    if not isinstance(spec, Mapping):
        if requirement is not None and not requirement.admits(spec):
            raise _invalid(f"search space {key}", spec, requirement)
        return
    kind, low, high = spec.get("type"), spec.get("low"), spec.get("high")
    if kind == "categorical" and spec.get("choices"):
        for choice in spec["choices"]:
            if requirement is not None and not requirement.admits(choice):
                raise _invalid(f"search space {key} choice", choice, requirement)
        return
    integer = kind == "int"
    if kind in ("float", "int") and _is_number(low, integer) and _is_number(high, integer) and low <= high:
        if spec.get("log") and low <= 0:
            raise ConfigError(f"search space {key}: a log range needs low > 0, got low={low}")
        fits = requirement.admits_interval(low, high) if isinstance(requirement, Number) else True
        if not fits:
            raise ConfigError(f"search space {key}: the range [{low}, {high}] leaves {requirement}")
        return
    raise ConfigError(
        f"search space entry {key}={dict(spec)} is invalid; use a constant, {{type: categorical, choices: [...]}} or "
        "{type: float|int, low: ..., high: ... (low <= high), log: true|false}"
    )


def validate_search_space(search: DictConfig) -> None:
    """Every entry of ``search.space`` and ``search.per_loss``, so no drawn trial is refused by ``validate``."""
    spaces = [search.get("space") or {}, *(search.get("per_loss") or {}).values()]
    for space in spaces:
        for key, spec in OmegaConf.to_container(space, resolve=True).items():
            if spec is not None:
                _check_entry(key, spec)


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
