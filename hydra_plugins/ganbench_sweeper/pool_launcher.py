"""``hydra/launcher=ganbench_local`` and ``ganbench_slurm`` (``launcher=parallel``, ``launcher=slurm``): a sweep's
jobs on ``slots`` slots, each job started as soon as a slot is free (``ganbench.job_pool``).

Hydra glue only: the slots, resubmission and signals are in ``ganbench.job_pool``; where the jobs run is in
``ganbench.local_jobs`` and ``ganbench.slurm_jobs``. ``JobRunner`` is what runs inside each job: the Hydra job with
the sweep's config and the job's overrides, as Hydra's own launchers run it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict


class JobRunner:
    """The task as one job runs it: pickled with the sweep's config, called in the job's own process. (A plain class:
    Hydra loads plugin modules outside ``sys.modules``, where a dataclass cannot be built.)"""

    def __init__(
        self,
        hydra_context: HydraContext,
        config: DictConfig,
        task_function: TaskFunction,
        singleton_state: dict[Any, Any],
    ) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.task_function, self.singleton_state = task_function, singleton_state

    def __call__(self, job: Any) -> JobReturn:
        Singleton.set_state(self.singleton_state)
        setup_globals()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(job.overrides))
        with open_dict(sweep_config.hydra.job) as hydra_job:
            hydra_job.id = os.environ.get("SLURM_JOB_ID") or str(os.getpid())
            hydra_job.num = job.num
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )


class PoolLauncher(Launcher):
    """Runs a sweep's jobs on ``slots`` slots of a backend: ``local`` processes or ``slurm`` jobs (``slurm`` holds
    the SLURM resources, checked against the cluster before anything is submitted; ``result_wait_s`` is how long a
    SLURM job's result file may take to appear after the job ended, on a network file system)."""

    def __init__(
        self,
        backend: str,
        slots: int,
        max_resubmissions: int,
        folder: str,
        slurm: DictConfig | None = None,
        result_wait_s: float = 15.0,
    ) -> None:
        from ganbench.errors import UserError

        if int(slots) < 1 or int(max_resubmissions) < 0:
            raise UserError(
                f"hydra.launcher.slots={slots} and hydra.launcher.max_resubmissions={max_resubmissions}: a sweep "
                "needs at least one slot (parallel_jobs=N) and no negative resubmissions"
            )
        self.backend, self.slots, self.max_resubmissions = backend, int(slots), int(max_resubmissions)
        self.folder, self.result_wait_s = Path(folder), float(result_wait_s)
        self.slurm: dict[str, Any] = OmegaConf.to_container(slurm, resolve=True) if slurm is not None else {}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def run(self, jobs: Iterable[Any]) -> Iterator[Any]:
        """Yield each job (``ganbench.job_pool.Job``) as it ends (``ganbench.job_pool.Ended``)."""
        from ganbench.job_pool import JobPool  # imported here: Hydra imports every plugin module on each launch

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        runner = JobRunner(self.hydra_context, self.config, self.task_function, Singleton.get_state())
        if self.backend == "slurm":
            from ganbench.slurm_jobs import SlurmJobs

            backend: Any = SlurmJobs(self.folder, runner, self.slurm, self.result_wait_s)
        else:
            from ganbench.local_jobs import LocalProcesses

            backend = LocalProcesses(self.folder, runner)
        yield from JobPool(backend, self.slots, self.max_resubmissions).run(jobs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Hydra's launcher interface (for Hydra's own sweepers): all the jobs, each as soon as a slot is free."""
        from ganbench.job_pool import Job

        jobs = [Job(initial_job_idx + index, tuple(overrides)) for index, overrides in enumerate(job_overrides)]
        ended = {end.job.num: end for end in self.run(jobs)}
        return [_job_return(ended[job.num]) for job in jobs]


def _job_return(ended: Any) -> JobReturn:
    """The JobReturn of an ended job; a job without one fails, saying why."""
    if ended.result is not None:
        return ended.result
    failed = JobReturn(overrides=list(ended.job.overrides), status=JobStatus.FAILED)
    failed.return_value = RuntimeError(f"job {ended.job.num}: {ended.crash or 'no result'} (log: {ended.log})")
    return failed
