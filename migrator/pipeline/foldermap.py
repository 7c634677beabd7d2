"""Which folders a run copies, and what they are called on the target.

Rules are written with '/' between levels, whatever the stores' own separators:
``--folder 'Projects/*'``, ``--exclude Trash``, ``--map 'Old/Stuff=Archive/Stuff'`` (the
folder and everything below it) or ``--map 're:^Lists/(.*)=Archive/\\1'`` (a regular
expression over the whole name).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from migrator.core.errors import ConfigError, did_you_mean
from migrator.core.folder import Folder, Role
from migrator.core.message import FolderPath

_LISTED = 12  # folder names an error lists before "and N more"


def display_name(path: FolderPath) -> str:
    """Return the folder path as written in rules and messages: names joined by '/'."""
    return "/".join(path)


def parse_path(name: str) -> FolderPath:
    """Return the folder path written as ``name`` ('/' between levels; INBOX any case)."""
    parts = tuple(p for p in name.split("/") if p)
    if not parts:
        raise ConfigError(f"{name!r} is not a folder name")
    if parts[0].upper() == "INBOX":
        parts = ("INBOX",) + parts[1:]
    return parts


class MapRule(NamedTuple):
    """One rename: an exact folder (and its subtree) or a regular expression over the name."""

    pattern: str
    replacement: str
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> MapRule:
        """Return the rule written as ``OLD=NEW`` or ``re:REGEX=NEW``; raise ConfigError."""
        body, is_regex = (text[3:], True) if text.startswith("re:") else (text, False)
        old, sep, new = body.partition("=")
        if not sep or not old or not new:
            raise ConfigError(f"cannot read the folder map {text!r}: write OLD=NEW or re:REGEX=NEW")
        if not is_regex:
            return cls(display_name(parse_path(old)), display_name(parse_path(new)))
        try:
            return cls(old, new, re.compile(old))
        except re.error as e:
            raise ConfigError(f"the folder map {text!r} is not a valid regular expression: {e}") from None

    def apply(self, name: str) -> str | None:
        """Return the new name, or None when the rule does not match ``name``."""
        if self.regex is not None:
            if not self.regex.fullmatch(name):
                return None
            return self.regex.sub(self.replacement, name, count=1)
        if name == self.pattern:
            return self.replacement
        if name.startswith(self.pattern + "/"):
            return self.replacement + name[len(self.pattern):]
        return None


class FolderRules(NamedTuple):
    """Include and exclude globs plus rename rules; the first matching rename wins.

    ``origin`` says where the include globs were written, for the error when one matches nothing.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    renames: tuple[MapRule, ...] = ()
    origin: str = "--folder"

    @classmethod
    def build(cls, include: Iterable[str] = (), exclude: Iterable[str] = (), maps: Iterable[str] = ()) -> FolderRules:
        """Return rules from command-line style strings; raise ConfigError on a bad map."""
        return cls(tuple(include), tuple(exclude), tuple(MapRule.parse(m) for m in maps))

    def selects(self, folder: Folder) -> bool:
        """Return True when ``folder`` is to be copied."""
        name = folder.name
        if self.include and not any(_matches(name, pattern) for pattern in self.include):
            return False
        return not any(_matches(name, pattern) for pattern in self.exclude)

    def select(self, folders: Sequence[Folder], source: str = "SOURCE") -> list[Folder]:
        """Return the selected selectable folders; raise ConfigError for an include matching no folder.

        A glob that matches nothing is as much a mistake as a name: a typo in a nightly job
        would otherwise back up nothing, every night, with exit status 0.
        """
        names = [f.name for f in folders]
        for pattern in self.include:
            if not any(_matches(name, pattern) for name in names):
                raise ConfigError(self._no_match(pattern, names, source))
        return [f for f in folders if f.selectable and self.selects(f)]

    def _no_match(self, pattern: str, names: list[str], source: str) -> str:
        listed = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
        return (f"no folder of {source} matches {pattern!r} from {self.origin}{did_you_mean(pattern, names)}; "
                f"it has {listed or 'no folders'}; see them all with `migrator folders {shlex.quote(source)}`")

    def destination(self, folder: Folder) -> tuple[FolderPath, Role | None]:
        """Return the target path of ``folder`` and the role to look for there.

        A folder the user renamed goes where the rule says, not to the target's folder of
        the same special-use role.
        """
        path = self.target_path(folder.path)
        return path, folder.role if path == folder.path else None

    def target_path(self, path: FolderPath) -> FolderPath:
        """Return the path the folder gets on the targets after renames."""
        name = display_name(path)
        for rule in self.renames:
            renamed = rule.apply(name)
            if renamed is not None:
                return parse_path(renamed)
        return path


def _matches(name: str, pattern: str) -> bool:
    # INBOX is case-insensitive in IMAP, so the rules treat it that way too.
    if pattern[:5].upper() == "INBOX":
        pattern = "INBOX" + pattern[5:]
    return fnmatch.fnmatchcase(name, pattern)
