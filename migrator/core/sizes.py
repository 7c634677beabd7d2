"""Sizes written the way people write them: 25MB, 1.5 GB, 512 KiB."""

from __future__ import annotations

import re

SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
              "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Return a size in bytes from a number or text like "25MB", "1.5 GB", "512 KiB"; raise ValueError."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(2).lower() not in SIZE_UNITS:
        raise ValueError
    result = int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])
    if result <= 0:
        raise ValueError
    return result


def format_size(count: int) -> str:
    """Return ``count`` bytes as people write it: "512 bytes", "25.0 MB", "2.0 GB" (powers of 1000, as parse_size's)."""
    for unit, scale in (("EB", 10**18), ("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
