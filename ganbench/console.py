"""What ganbench prints: a progress bar and one result line per run (a sweep adds its summary line, ganbench.sweep);
the libraries' own messages only with ``verbose=true`` (or Hydra's ``hydra.verbose``). Errors and warnings still
show."""

from __future__ import annotations

import logging
import math
import os
import warnings

from ganbench.diagnostics import headline
from ganbench.record import RunRecord

# Their INFO lines ("GPU available: False", the "💡 Tip" about litlogger, "`weights_only` was not set", Optuna's
# "A new study created in memory") say nothing about the run; their warnings and errors still show.
CHATTY_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric", "optuna")


def quiet_libraries(verbose: bool) -> None:
    """Silence the libraries' progress chatter for this process and the runs it starts (the W&B setting is an
    environment variable, so submitit and DDP workers inherit it); nothing changes when ``verbose``."""
    if verbose:
        return
    # W&B's banner, run-history table and sync hints; its failures still raise. A user's own WANDB_SILENT wins.
    os.environ.setdefault("WANDB_SILENT", "true")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6's _pytree calls torch's deprecated LeafSpec check on every fit; only a Lightning release fixes it.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning's hint on any machine with SLURM's client tools, also inside SLURM jobs that ganbench started itself.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")


def result_line(record: RunRecord) -> str:
    """The run's one result line: status, the protocol's final and best metrics, and the diagnostics' warnings."""

    def fmt(metrics: dict[str, float] | None) -> str:
        shown = headline(metrics, record.primary_metric)
        return ", ".join(f"{k} {'n/a' if v is None else format(v, '.4g')}" for k, v in shown.items()) or "none"

    line = (
        f"{record.loss} on {record.dataset}: {record.status} after {record.g_steps} G steps in "
        f"{record.wall_time_s:.0f} s | final: {fmt(record.final)} | best {record.primary_metric}: "
        f"{fmt(record.best)}"
    )
    d_auc = (record.final or {}).get("d_auc")
    if d_auc is not None and math.isfinite(d_auc):  # NaN (stored as null): D took no step since the last evaluation
        line += f" | D accuracy {d_auc:.2f}"
    return line + "".join(f" | WARNING: {warning}" for warning in record.warnings)
