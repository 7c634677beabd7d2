"""Text for the user's terminal: what a server sends escaped, and columns counted as a terminal counts them."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """Return ``text`` with every unprintable character escaped as repr() escapes it (ESC is ``\\x1b``).

    Folder names and headers come from servers and files: printed raw, an escape sequence in
    one could move the cursor, retitle the window or hide the lines before it.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def columns(text: str) -> int:
    """Return how many terminal columns ``text`` takes: wide East Asian characters two, combining marks none."""
    return sum(_columns(char) for char in text)


def _columns(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def pad(text: str, width: int) -> str:
    """Return ``text`` followed by the spaces that make it ``width`` columns wide (left-aligned in a table)."""
    return text + " " * max(0, width - columns(text))


def shorten(text: str, width: int) -> str:
    """Return ``text`` cut to at most ``width`` columns, ending in "…" when something was cut."""
    if columns(text) <= width:
        return text
    kept, used = [], 1  # the ellipsis takes one column
    for char in text:
        used += _columns(char)
        if used > width:
            break
        kept.append(char)
    return "".join(kept) + "…"


def plural(count: int, noun: str) -> str:
    """Return "1 folder", "2 folders", "0 folders": the count with the noun in the number it needs."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
