"""Where a password or an OAuth2 access token comes from: an environment variable, a file, a command, or a prompt."""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import subprocess
import sys
from typing import NamedTuple

from migrator.core.errors import ConfigError

_NOT_FOUND = 127  # the shell's exit status when it cannot find the program
_COMMAND_KEYS = {"password": "password_command", "access token": "token_command",
                 "client secret": "client_secret_command"}


class PasswordSource(NamedTuple):
    """One way of obtaining a password; at most one field is set, none means prompt."""

    env: str | None = None
    file: str | None = None
    command: str | None = None
    literal: str | None = None  # from a profile only; never from a URL

    def __repr__(self) -> str:  # never show a literal password in logs or tracebacks
        kind = next((k for k in ("env", "file", "command") if getattr(self, k)), None)
        if self.literal is not None:
            return "PasswordSource(literal=***)"
        return f"PasswordSource({kind}={getattr(self, kind)!r})" if kind else "PasswordSource(prompt)"

    def resolve(self, account: str) -> str:
        """Return the password for ``account``; raise ConfigError when it cannot be had."""
        if self.literal is not None:
            return self.literal
        if self.env:
            return _from_env(self.env, account)
        if self.file:
            return _from_file(self.file, account)
        if self.command:
            return _from_command(self.command, account)
        return _from_prompt(account)


class TokenSource(NamedTuple):
    """Where an OAuth2 access token comes from (token_env, token_file, token_command): exactly one is set.

    Read again at every connection: a helper such as ``oama`` or ``pizauth`` hands out a fresh token.
    """

    env: str | None = None
    file: str | None = None
    command: str | None = None

    def __repr__(self) -> str:  # names where the token is, never the token
        kind = next((k for k in ("env", "file", "command") if getattr(self, k)), "none")
        return f"TokenSource({kind}={getattr(self, kind, None)!r})"

    def __bool__(self) -> bool:
        return bool(self.env or self.file or self.command)

    def resolve(self, account: str) -> str:
        """Return the access token for ``account`` now; raise ConfigError when it cannot be had."""
        if self.env:
            return _from_env(self.env, account, "access token")
        if self.file:
            return _from_file(self.file, account, "access token")
        if self.command:
            return _from_command(self.command, account, "access token")
        raise ConfigError(f"no access token source for {account}: add token_command, token_file or token_env")


def _from_env(name: str, account: str, what: str = "password") -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"the {what} for {account} should come from ${name}, which is not set: export it first")
    return value


def _from_file(path: str, account: str, what: str = "password") -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            value = f.readline().rstrip("\r\n")
    except OSError as e:
        raise ConfigError(f"cannot read the {what} file {path} for {account}: {e.strerror}") from None
    if what != "password" and not value.strip():
        raise ConfigError(f"the {what} file {path} for {account} is empty")
    return value.strip() if what != "password" else value


def _from_command(command: str, account: str, what: str = "password") -> str:
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the {what} command for {account} did not finish within 60 s: {command}") from None
    if done.returncode != 0:
        raise ConfigError(_failure(command, account, done.returncode, what))
    lines = done.stdout.splitlines()
    if not lines:
        raise ConfigError(f"the {what} command for {account} printed nothing: {command}")
    return lines[0].strip() if what != "password" else lines[0]


def command_output(command: str, account: str, what: str) -> str:
    """Return the first line ``command`` prints (a client secret, say); raise ConfigError naming ``what``."""
    return _from_command(command, account, what)


def _failure(command: str, account: str, status: int, what: str) -> str:
    """Return what to tell the user when the password command exited with ``status``."""
    missing = _missing_program(command) if status == _NOT_FOUND else None
    if missing:
        key = _COMMAND_KEYS.get(what, "the command")
        return (f"the {what} command for {account} cannot run: command not found: {missing}; "
                f"install it, or write its full path in {key}")
    return f"the {what} command for {account} failed with status {status}: {command}"


def _missing_program(command: str) -> str | None:
    """Return the program ``command`` runs first when it is not installed, else None."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    # Leading NAME=value words set the environment of the program that follows them.
    program = next((word for word in words if "=" not in word), None)
    return program if program is not None and shutil.which(program) is None else None


def _from_prompt(account: str) -> str:
    if not sys.stdin.isatty():
        raise ConfigError(
            f"no password given for {account} and no terminal to ask on: "
            "add ?password_env=VAR or ?password_file=PATH to the endpoint"
        )
    return getpass.getpass(f"Password for {account}: ")
