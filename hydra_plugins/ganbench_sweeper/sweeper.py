"""``hydra/sweeper=ganbench`` (every ``ganbench-train -m``): a grid of overrides, or one Optuna study through
ask-and-tell when the config has a ``search`` node (``search=lucic_wide``...).

Hydra glue only: the sweep's rules (which jobs, in which order, what is skipped, what the multirun prints and exits
with) are in ``ganbench.sweep``, the study's in ``ganbench.search``. It replaces hydra-optuna-sweeper, whose pins
(``optuna<3``, ``sqlalchemy<2``) downgraded today's Optuna and SQLAlchemy, and Hydra's basic sweeper, which hands the
launcher batches and waits for the slowest job of each.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class GanbenchSweeper(Sweeper):
    """Runs a multirun's jobs on the configured launcher: ``n_trials`` trials of a study when ``search`` is set,
    else the grid of the command line's sweep overrides and ``params`` (as Hydra's basic sweeper reads them)."""

    def __init__(self, sampler: BaseSampler, direction: str, n_trials: int, params: DictConfig | None = None) -> None:
        """``sampler`` comes instantiated from ``hydra/sweeper/sampler`` (Hydra instantiates nested configs)."""
        self.sampler, self.direction, self.n_trials = sampler, direction, int(n_trials)
        self.params = {str(key): str(value) for key, value in (params or {}).items()}
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from ganbench.errors import find_user_error

        self.hydra_context, self.config = hydra_context, config
        try:
            self.launcher = Plugins.instance().instantiate_launcher(
                hydra_context=hydra_context, task_function=task_function, config=config
            )
        except Exception as error:
            if (user_error := find_user_error(error)) is None:
                raise
            print(f"ganbench: {user_error}", file=sys.stderr)
            sys.exit(2)

    def sweep(self, arguments: list[str]) -> Any:
        from ganbench.console import quiet_libraries  # imported here: Hydra imports every plugin module on each launch
        from ganbench.errors import SweepExit, UserError
        from ganbench.job_pool import SweepStopped

        assert self.config is not None
        quiet_libraries(verbose=bool(self.config.get("verbose") or self.config.hydra.verbose))
        try:
            return self._sweep([*(f"{key}={value}" for key, value in self.params.items()), *arguments])
        except UserError as error:  # bad input found before or while launching: one line, exit 2
            print(f"ganbench: {error}", file=sys.stderr)
            sys.exit(2)
        except SweepStopped as stopped:
            print(f"ganbench: {stopped}", file=sys.stderr)
            raise SweepExit(stopped.exit_code) from None

    def _sweep(self, arguments: list[str]) -> Any:
        from ganbench.errors import SweepExit
        from ganbench.search import Study
        from ganbench.sweep import Grid, Search, job_config, run_sweep, sweep_exit, sweep_summary

        assert self.config is not None and self.hydra_context is not None
        loader, config = self.hydra_context.config_loader, self.config
        if config.get("search") is not None:
            study = Study.create(config.search, arguments, loader, self.sampler, self.direction)
            plan: Grid | Search = Search(study, arguments, self.n_trials)
        else:
            plan = Grid(arguments, loader)
            self.validate_batch_is_legal([list(job.overrides) for job in plan.jobs])
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        outcomes = run_sweep(plan, self.launcher, lambda job: job_config(loader, config, job))
        plan.finish(sweep_dir)
        print(sweep_summary(sweep_dir, outcomes))
        code, line = sweep_exit(outcomes)
        if line is not None:
            print(line, file=sys.stderr)
            raise SweepExit(code)
        return outcomes
