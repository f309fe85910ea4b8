"""On-disk caches of derived data (the triangles set, real-image statistics): validate or rebuild, write atomically.

A cache file is only ever a copy of something ganbench can rebuild, so a file that is stale, truncated or not ours
is not an error: it is reported once and replaced. The report goes through logging rather than ``warnings.warn``:
nothing in the caller's code or config could avoid it (the Python logging HOWTO's rule for choosing), and logging
puts it in the run's log file next to the rest of the run, where ``warnings`` would show it once per call site and
keep it out of that file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ganbench.atomic import atomic_path

log = logging.getLogger(__name__)

T = TypeVar("T")


def load_or_build(
    path: Path, load: Callable[[Path], T], build: Callable[[], T], save: Callable[[T, Path], None], what: str
) -> T:
    """``load(path)`` when the file exists and loads, else ``build()``, saved for the next caller and returned.

    ``load`` raises (any exception; a ValueError naming the problem where it checks the content itself) when the
    file is not what this caller would build; ``what`` names the file in the log ("triangles cache"). ``save``
    writes to a temporary path that replaces ``path`` only once complete, so concurrent readers and writers (DDP
    ranks, sweep jobs sharing a data root) never see a partial file.
    """
    if path.exists():
        try:
            return load(path)
        except Exception as error:  # any unusable file is rebuilt: zip, key, JSON, shape and checksum errors alike
            log.warning("%s %s is unusable (%s: %s); rebuilding it", what, path, type(error).__name__, error)
    value = build()
    with atomic_path(path) as temporary:
        save(value, temporary)
    log.info("wrote %s %s", what, path)
    return value
