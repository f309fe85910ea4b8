"""The IDX files of MNIST and Fashion-MNIST, checked before torchvision parses them.

torchvision's reader only asserts on a bad file (an ``AssertionError`` with no message), so each file a split needs is
checked here first: readable, not still gzip-compressed, the magic number, the item shape in the header, and a length
that matches the header. Only the header is read (16 bytes), so the check costs nothing next to the parse.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from ganbench.errors import CorruptFileError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IdxKind:
    """What one IDX file of the dataset must hold: unsigned bytes (type code 0x08) of a fixed item shape."""

    name: str
    items: str
    item_shape: tuple[int, ...]

    @property
    def magic(self) -> int:
        """0x08 (unsigned byte) << 8 | number of dimensions: 0x803 = 2051 for images, 0x801 = 2049 for labels."""
        return 0x0800 | (1 + len(self.item_shape))

    @property
    def header_size(self) -> int:
        """The magic number and one big-endian uint32 per dimension."""
        return 4 * (2 + len(self.item_shape))


IMAGES = IdxKind("IDX images", "images", (28, 28))
LABELS = IdxKind("IDX labels", "labels", ())


def check_idx(path: Path, kind: IdxKind, fix: str) -> int:
    """The number of items in the IDX file at ``path``; raises CorruptFileError (with ``fix``) when torchvision
    could not parse it."""
    try:
        with path.open("rb") as file:
            header = file.read(kind.header_size)
        size = path.stat().st_size
    except OSError as error:
        raise CorruptFileError(path, f"unreadable ({error.strerror or error})", fix) from error
    if header.startswith(GZIP_MAGIC):
        raise CorruptFileError(
            path,
            "it is gzip-compressed, but torchvision reads the uncompressed IDX file under this name",
            f"Fix: rename it to {path.name}.gz and gunzip it there, which restores {path.name}.",
        )
    problem = header_problem(header, size, kind)
    if problem:
        raise CorruptFileError(path, problem, fix)
    return struct.unpack(">I", header[4:8])[0]


def header_problem(header: bytes, size: int, kind: IdxKind) -> str | None:
    """What is wrong with an IDX file of ``size`` bytes that starts with ``header``, or None when it is well formed."""
    if len(header) < kind.header_size:
        return f"truncated: {size:,} bytes, shorter than the {kind.header_size}-byte header of {kind.name}"
    magic, count, *item_shape = struct.unpack(f">{len(header) // 4}I", header)
    if magic != kind.magic:
        return f"bad magic number 0x{magic:08x}, expected 0x{kind.magic:08x} ({kind.name})"
    if tuple(item_shape) != kind.item_shape:
        shape, expected = "×".join(map(str, item_shape)), "×".join(map(str, kind.item_shape))
        return f"the header says {count:,} {kind.items} of {shape} pixels, expected {expected}"
    expected_size = kind.header_size + count * math.prod(item_shape)
    if size < expected_size:
        return f"truncated: {size:,} bytes, the header says {expected_size:,}"
    if size > expected_size:
        return f"{size - expected_size:,} bytes too long: {size:,} bytes, the header says {expected_size:,}"
    return None
