"""Shards: N machines share one list of accounts without talking, each taking the accounts of its index.

An account belongs to shard ``sha256(normalised id) mod N``: the same on every machine and Python version
(Python's ``hash()`` of a string changes from process to process). The index comes from ``--shard I/N``, a
Kubernetes Indexed Job's ``JOB_COMPLETION_INDEX`` (with ``--shards N`` or ``MIGRATOR_SHARDS``: Kubernetes
gives no total), or a Slurm job array's ``SLURM_ARRAY_TASK_ID``, whose ids need not start at 0 nor follow
each other: the shard is the task's position, ``(ID - MIN) / STEP``, of ``SLURM_ARRAY_TASK_COUNT``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from migrator.core.errors import ConfigError


class _HasKey(Protocol):
    @property
    def key(self) -> str: ...


_Keyed = TypeVar("_Keyed", bound=_HasKey)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``; the whole list is Shard(0, 1)."""

    index: int
    count: int
    origin: str = "--shard"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def whole(self) -> bool:
        """Return True when this shard is the whole list."""
        return self.count == 1

    def holds(self, key: str) -> bool:
        """Return True when the account with the normalised id ``key`` belongs to this shard."""
        return shard_of(key, self.count) == self.index

    def select(self, accounts: Iterable[_Keyed]) -> list[_Keyed]:
        """Return the accounts (anything with a normalised id as ``key``) of this shard, in their order."""
        return [account for account in accounts if self.holds(account.key)]


def shard_of(key: str, count: int) -> int:
    """Return the shard (0 to count - 1) of the normalised account id ``key``: a stable hash, not hash()."""
    digest = hashlib.sha256(key.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """Return the shard ``I/N`` names; raise ConfigError unless 0 <= I < N."""
    index, _, count = text.partition("/")
    if not (index.strip().isdigit() and count.strip().isdigit()):
        raise ConfigError(f"--shard {text}: write I/N, e.g. --shard 0/8 for the first of 8 shards")
    return _checked(int(index), int(count), f"--shard {text}")


def choose_shard(option: str | None, shards: int | None, environ: Mapping[str, str]) -> Shard:
    """Return the shard of this process: --shard, else Kubernetes' or Slurm's variables, else the whole list."""
    if option is not None:
        return parse_shard(option)
    if "JOB_COMPLETION_INDEX" in environ:
        return _kubernetes(environ, shards)
    if "SLURM_ARRAY_TASK_ID" in environ:
        return _slurm(environ)
    if shards is not None and shards > 1:
        raise ConfigError(f"--shards {shards} without an index: give --shard I/{shards}, or run in a Kubernetes "
                          "Indexed Job (JOB_COMPLETION_INDEX) or a Slurm job array")
    return Shard(0, 1, "the whole list")


def _kubernetes(environ: Mapping[str, str], shards: int | None) -> Shard:
    total = shards if shards is not None else _number(environ, "MIGRATOR_SHARDS", required=False)
    if total is None:
        raise ConfigError("JOB_COMPLETION_INDEX is set but not how many shards there are (Kubernetes does not say): "
                          "pass --shards N or set MIGRATOR_SHARDS to the Job's completions")
    index = _number(environ, "JOB_COMPLETION_INDEX")
    assert index is not None
    return _checked(index, total, f"JOB_COMPLETION_INDEX={index} of {total}")


def _slurm(environ: Mapping[str, str]) -> Shard:
    task, low = _number(environ, "SLURM_ARRAY_TASK_ID"), _number(environ, "SLURM_ARRAY_TASK_MIN")
    step, count = _number(environ, "SLURM_ARRAY_TASK_STEP", required=False) or 1, \
        _number(environ, "SLURM_ARRAY_TASK_COUNT")
    assert task is not None and low is not None and count is not None
    if (task - low) % step:
        raise ConfigError(f"SLURM_ARRAY_TASK_ID={task} is not MIN {low} plus a multiple of STEP {step}: "
                          "migrator batch expects an array like --array=MIN-MAX:STEP")
    return _checked((task - low) // step, count, f"SLURM_ARRAY_TASK_ID={task} (position {(task - low) // step} "
                                                 f"of {count})")


def _number(environ: Mapping[str, str], name: str, *, required: bool = True) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        if required:
            raise ConfigError(f"{name} is not set: migrator batch needs it to find its shard")
        return None
    if not text.isdigit():
        raise ConfigError(f"{name}={text!r} is not a whole number")
    return int(text)


def _checked(index: int, count: int, origin: str) -> Shard:
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"{origin}: the shard must be from 0 to the number of shards less one")
    return Shard(index, count, origin)
