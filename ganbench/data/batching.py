"""Batch size semantics shared by every datamodule: ``batch_size`` in a config is the global batch."""

from __future__ import annotations

from ganbench.errors import UserError


def process_batch_size(global_batch_size: int, world_size: int) -> int:
    """Each of ``world_size`` processes takes an equal share, so a G step means the same at any scale."""
    if global_batch_size % world_size:
        raise UserError(
            f"dataset.batch_size={global_batch_size} is not divisible by the {world_size} training processes; "
            f"choose a multiple of {world_size} (it is the global batch, split across processes)"
        )
    return global_batch_size // world_size
