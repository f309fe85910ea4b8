"""Atomic file writes: a kill during a write leaves the previous file (or none), never a partial one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` to write to; renamed onto ``path`` when the block succeeds, removed when
    it fails. The name includes the process id, so concurrent writers (DDP ranks, sweep jobs) never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
