"""The list of accounts: Exchange Online's IMAP-migration CSV (with more columns), or imapsync's lines.

A row's columns fill the template profile's ``${NAME}``s. Exchange's file (``EmailAddress,UserName,Password``,
optional ``UserRoot``) loads unchanged; the further columns name what differs per row. Each account gets a
directory named from its id that cannot leave the batch directory, whatever the address holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from migrator.core.errors import ConfigError, did_you_mean

EXCHANGE_COLUMNS = ("EmailAddress", "UserName", "Password", "UserRoot")
PASSWORD_COLUMNS = {  # the variable a template uses, and the columns that may give it (one per row)
    "Password": ("Password", "PasswordEnv", "PasswordFile", "PasswordCommand"),
    "TargetPassword": ("TargetPassword", "TargetPasswordEnv", "TargetPasswordFile", "TargetPasswordCommand"),
    "AdminPassword": ("AdminPassword", "AdminPasswordEnv", "AdminPasswordFile", "AdminPasswordCommand"),
}
KNOWN_COLUMNS = (
    *EXCHANGE_COLUMNS, "Account", "SourceHost", "SourcePort", "PasswordEnv", "PasswordFile", "PasswordCommand",
    "TargetHost", "TargetPort", "TargetUser", *PASSWORD_COLUMNS["TargetPassword"], "AdminUser",
    *PASSWORD_COLUMNS["AdminPassword"], "Profile",
)
PATH_COLUMNS = ("Profile", "PasswordFile", "TargetPasswordFile", "AdminPasswordFile")  # relative to the list
SECRET_COLUMNS = ("Password", "TargetPassword", "AdminPassword")  # clear text: never logged or reported
IMAPSYNC_FIELDS = ("SourceHost", "UserName", "Password", "TargetHost", "TargetUser", "TargetPassword")
FORMATS = ("auto", "csv", "imapsync")
_SAFE = re.compile(r"[^a-z0-9@._+-]")
_MAX_NAME = 80


@dataclass(frozen=True)
class Account:
    """One row: its line in the list, its columns, and the original text for the failed-rows file."""

    line: int
    values: dict[str, str] = field(repr=False)
    original: str | dict[str, str] = field(repr=False)  # the imapsync line, or the CSV row as read

    @property
    def id(self) -> str:
        """Return the account as people name it: Account, else EmailAddress, else UserName."""
        for column in ("Account", "EmailAddress", "UserName"):
            if self.values.get(column, "").strip():
                return self.values[column].strip()
        raise ValueError("an account without an id")  # read_accounts refuses such rows

    @property
    def key(self) -> str:
        """Return the normalised id: what shards hash and duplicates are found by."""
        return self.id.strip().lower()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Return the clear passwords the row holds, to be masked wherever text is shown."""
        return tuple(self.values[c] for c in SECRET_COLUMNS if self.values.get(c))

    @property
    def dir_name(self) -> str:
        """Return the name of the account's directory: its id made safe, with a hash where it had to change."""
        return safe_name(self.key)


@dataclass(frozen=True)
class AccountList:
    """The accounts of a list file, in its order, with what it takes to write rows back in its format."""

    path: Path
    format: str  # csv or imapsync
    columns: tuple[str, ...]
    accounts: tuple[Account, ...]


def safe_name(key: str) -> str:
    """Return a directory name for ``key`` that is one plain name: no '/', no '..', no leading dot."""
    name = _SAFE.sub("_", key)[:_MAX_NAME].lstrip(".")
    if name != key or not name:
        name = f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}".lstrip("-")
    return name


def read_accounts(path: Path, *, format: str = "auto", allow_columns: bool = False) -> AccountList:
    """Return the accounts of the list at ``path``; raise ConfigError naming the line of the first mistake."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"no list of accounts {path}: check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the list of accounts {path}: {getattr(error, 'strerror', None) or error}") \
            from None
    chosen = detect_format(text) if format == "auto" else format
    if chosen == "imapsync":
        listed = AccountList(Path(path), "imapsync", IMAPSYNC_FIELDS, tuple(_imapsync_rows(text, path)))
    else:
        columns, rows = _csv_rows(text, path, allow_columns)
        listed = AccountList(Path(path), "csv", columns, tuple(rows))
    _check_unique(listed)
    return listed


def detect_format(text: str) -> str:
    """Return "imapsync" when the first line that is not blank or a comment is six fields joined by ';'."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return "imapsync" if len(line.rstrip().rstrip(";").split(";")) == len(IMAPSYNC_FIELDS) else "csv"
    return "csv"


def _csv_rows(text: str, path: Path, allow_columns: bool) -> tuple[tuple[str, ...], list[Account]]:
    reader = csv.reader(io.StringIO(text))
    header = tuple(name.strip() for name in next(reader, []))
    if not header:
        raise ConfigError(f"{path} is empty: its first line names the columns, e.g. EmailAddress,UserName,Password")
    _check_columns(header, path, allow_columns)
    accounts = []
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise ConfigError(f"{path}, line {reader.line_num}: {len(fields)} fields where the header names "
                              f"{len(header)} ({','.join(header)})")
        values = {name: value for name, value in zip(header, fields) if value != ""}
        accounts.append(_checked(Account(reader.line_num, values, dict(zip(header, fields))), path))
    return header, accounts


def _check_columns(header: Sequence[str], path: Path, allow_columns: bool) -> None:
    for name in header:
        if header.count(name) > 1:
            raise ConfigError(f"{path}, line 1: the column {name} appears twice")
        if name not in KNOWN_COLUMNS and not allow_columns:
            raise ConfigError(
                f"{path}, line 1: unknown column {name!r}{did_you_mean(name, KNOWN_COLUMNS)}; the columns are "
                f"{', '.join(KNOWN_COLUMNS)} (--allow-columns lets the template use others as ${{NAME}})")
    if not {"Account", "EmailAddress", "UserName"} & set(header):
        raise ConfigError(f"{path}, line 1: no column names the account: add EmailAddress (or UserName, or Account)")


def _imapsync_rows(text: str, path: Path) -> Iterable[Account]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.rstrip("\r\n").rstrip(";").split(";")
        if len(fields) != len(IMAPSYNC_FIELDS):
            raise ConfigError(f"{path}, line {number}: {len(fields)} fields; imapsync's lines are "
                              "host1;user1;password1;host2;user2;password2;")
        values = {name: value for name, value in zip(IMAPSYNC_FIELDS, fields) if value != ""}
        yield _checked(Account(number, values, line.rstrip("\r\n")), path)


def _checked(account: Account, path: Path) -> Account:
    where = f"{path}, line {account.line}"
    if not any(account.values.get(c, "").strip() for c in ("Account", "EmailAddress", "UserName")):
        raise ConfigError(f"{where}: no account: fill in EmailAddress (or UserName, or Account)")
    for variable, columns in PASSWORD_COLUMNS.items():
        given = [c for c in columns if c in account.values]
        if len(given) > 1:
            raise ConfigError(f"{where}: give one source of {variable}, not both {given[0]} and {given[1]}")
    return account


def _check_unique(listed: AccountList) -> None:
    seen: dict[str, int] = {}
    for account in listed.accounts:
        if account.key in seen:
            raise ConfigError(f"{listed.path}, line {account.line}: the account {account.id} is on line "
                              f"{seen[account.key]} already; each account once")
        seen[account.key] = account.line


def _anchored(listed: AccountList, column: str, value: str) -> str:
    # Paths in a row are relative to its list; the failed rows are written elsewhere, so they get the whole path.
    if column in PATH_COLUMNS and value.strip():
        return str(listed.path.parent.resolve() / os.path.expanduser(value))
    return value


def failed_file_name(listed: AccountList) -> str:
    """Return the name of the file failed rows are written to, in the list's own format."""
    return "failed.txt" if listed.format == "imapsync" else "failed.csv"


def write_rows(path: Path, listed: AccountList, accounts: Iterable[Account]) -> None:
    """Write ``accounts`` to ``path`` in ``listed``'s format (mode 0600: rows may hold passwords)."""
    if listed.format == "imapsync":
        text = "".join(f"{account.original}\n" for account in accounts)
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(listed.columns)
        for account in accounts:
            original = account.original if isinstance(account.original, dict) else {}
            writer.writerow([_anchored(listed, c, original.get(c, "")) for c in listed.columns])
        text = out.getvalue()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
        file.write(text)
