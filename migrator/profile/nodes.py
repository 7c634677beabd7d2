"""A profile's YAML as a tree that remembers where every value was written.

PyYAML's ``compose`` gives nodes with marks; this turns them into scalars, mappings and
sequences that each carry their file, line and column, with ``${VAR}`` replaced from the
environment in every string, so that every later error can point at the exact spot.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor

from migrator.core.errors import ConfigError

# ${NAME} is replaced from the environment; $${ stands for a literal ${.
_VARIABLE = re.compile(r"\$(\$\{|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{)")


@dataclass(frozen=True)
class Where:
    """A place in a profile file (line and column counted from 1)."""

    file: str
    line: int
    column: int

    def error(self, message: str) -> ConfigError:
        """Return a ConfigError for ``message`` that names this place."""
        return ConfigError(f"{self.file}, line {self.line}, column {self.column}: {message}")


@dataclass(frozen=True)
class Scalar:
    """A single value; ``from_environment`` is True when it came (in part) from ``${VAR}``."""

    value: object
    where: Where
    from_environment: bool = False


@dataclass(frozen=True)
class Sequence:
    """A YAML list."""

    items: tuple[Item, ...]
    where: Where


@dataclass(frozen=True)
class Mapping:
    """A YAML mapping with string keys, each with the place the key was written."""

    entries: dict[str, Item]
    key_where: dict[str, Where]
    where: Where


Item = Scalar | Sequence | Mapping


def parse(text: str, file: str, environ: MappingABC[str, str] | None = None) -> Item | None:
    """Return the located tree of the YAML ``text`` (None when empty); raise ConfigError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error, text, file) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from None
    if node is None:
        return None
    return _Converter(file, os.environ if environ is None else environ).item(node)


# What PyYAML says while reading something left open, and what the user opened.
_UNCLOSED = {"quoted scalar": "a quote", "flow sequence": "a '['", "flow mapping": "a '{'"}
_QUOTING = "quote values that contain ': ' or start with one of { [ * & ! | > ' \" % @ `"


def _syntax_error(error: yaml.MarkedYAMLError, text: str, file: str) -> ConfigError:
    """Return a ConfigError that says, in plain words, what is wrong where, and how to fix it."""
    opened = next((what for words, what in _UNCLOSED.items() if words in str(error.context)), None)
    # Something left open is reported where the parser gave up (often the end of the file): point at its start.
    mark = error.context_mark if opened else error.problem_mark or error.context_mark
    if mark is None:
        words = " ".join(str(part) for part in (error.context, error.problem) if part)
        return ConfigError(f"{file}: not valid YAML: {words}; check the indentation and {_QUOTING}")
    where = Where(file, mark.line + 1, mark.column + 1)
    if opened:
        return where.error(f"not valid YAML: {opened} opened here is never closed: close it on the same line")
    line = (text.splitlines()[mark.line:] or [""])[0]
    return where.error(f"not valid YAML: {_explain(str(error.problem), line[:mark.column])}")


def _explain(problem: str, before: str) -> str:
    """Return what PyYAML's ``problem`` means, given the text of its line ``before`` the spot."""
    if "'\\t'" in problem:
        return "a tab character: YAML indents with spaces only; replace the tab with spaces"
    if "mapping values are not allowed" in problem and ": " in before:
        return "a second ': ' on one line: a value that contains a colon must be quoted, as in key: \"a: b\""
    if "mapping values are not allowed" in problem:
        return "this key is indented more than the one above it: keys of one section start in the same column"
    if "expected <block end>" in problem:
        return ("this line's indentation matches none of the lines above: keys of one section start in the same "
                "column, indented with spaces")
    return f"{problem}; check the indentation and {_QUOTING}"


class _Converter:
    def __init__(self, file: str, environ: MappingABC[str, str]) -> None:
        self.file = file
        self.environ = environ
        self.constructor = SafeConstructor()

    def where(self, node: yaml.Node) -> Where:
        return Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def item(self, node: yaml.Node) -> Item:
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return Sequence(tuple(self.item(child) for child in node.value), self.where(node))
        return self.scalar(node)

    def mapping(self, node: yaml.MappingNode) -> Mapping:
        entries: dict[str, Item] = {}
        key_where: dict[str, Where] = {}
        for key_node, value_node in node.value:
            where = self.where(key_node)
            key = self.scalar(key_node).value
            if not isinstance(key, str):
                raise where.error(f"the key {key!r} is not a name: keys are words like host or path")
            if key in entries:
                raise where.error(f"the key {key!r} appears twice (first on line {key_where[key].line}): keep one")
            entries[key] = self.item(value_node)
            key_where[key] = where
        return Mapping(entries, key_where, self.where(node))

    def scalar(self, node: yaml.Node) -> Scalar:
        where = self.where(node)
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError as error:
            raise where.error(f"cannot read this value: {getattr(error, 'problem', error)}") from None
        if isinstance(value, str) and "$" in value:
            expanded = expand(value, self.environ, where)
            return Scalar(expanded, where, expanded != value.replace("$${", "${"))
        return Scalar(value, where)


def expand(text: str, environ: MappingABC[str, str], where: Where) -> str:
    """Return ``text`` with each ``${NAME}`` replaced from ``environ``; raise ConfigError naming ``where``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "${":
            return "${"
        name = match.group(2)
        if name is None:
            raise where.error("a '${' without a variable name: write ${NAME}, or $${ for a literal ${")
        if name not in environ:
            raise where.error(f"the environment variable {name} is not set (used as ${{{name}}}): export it first")
        return environ[name]

    return _VARIABLE.sub(replace, text)
