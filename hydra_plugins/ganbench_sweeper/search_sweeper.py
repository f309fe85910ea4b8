"""``hydra/sweeper=ganbench_search``: a Hydra sweeper that runs one Optuna study through ask-and-tell.

Hydra glue only: the study's rules (which loss a trial trains, what it draws, which command lines are refused) are
in ``ganbench.search``. It replaces hydra-optuna-sweeper, whose pins (``optuna<3``, ``sqlalchemy<2``) downgraded
today's Optuna and SQLAlchemy in any environment it was installed into.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class SearchSweeper(Sweeper):
    """Draws ``n_trials`` trials in batches of ``n_jobs``, launches each batch with the configured launcher and tells
    the study each run's objective."""

    def __init__(self, sampler: BaseSampler, direction: str, n_trials: int, n_jobs: int) -> None:
        """``sampler`` comes instantiated from ``hydra/sweeper/sampler`` (Hydra instantiates nested configs)."""
        self.sampler, self.direction = sampler, direction
        self.n_trials, self.n_jobs = int(n_trials), max(int(n_jobs), 1)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from ganbench.console import quiet_libraries  # imported here: Hydra imports every plugin module on each launch
        from ganbench.search import Study

        assert self.config is not None and self.hydra_context is not None
        quiet_libraries(verbose=bool(self.config.get("verbose") or self.config.hydra.verbose))
        loader = self.hydra_context.config_loader
        study = Study.create(self.config.search, arguments, loader, self.sampler, self.direction)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        while (batch := min(self.n_jobs, self.n_trials - study.trials_drawn)) > 0:
            trials = [study.draw() for _ in range(batch)]
            jobs = [[*arguments, *study.overrides(trial)] for trial in trials]
            self.validate_batch_is_legal(jobs)
            results = self.launcher.launch(jobs, initial_job_idx=study.trials_drawn - batch)
            for trial, result in zip(trials, results, strict=True):
                study.tell(trial, result)
            returns.append(results)
        study.save_results(sweep_dir)
        return returns
