"""The largest message a server takes by APPEND, known before anything is sent.

A server may announce it as ``APPENDLIMIT=N`` in its capabilities (RFC 7889: Gmail does, and Dovecot
with ``quota_mail_size`` set); a provider preset (endpoints/presets.py) knows it for servers that do
not (Microsoft 365), and the user may give it (``append_limit=``). A larger message is failed up front
with the reason, instead of after its upload, and the rest of the batch is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from migrator.core.message import Message
from migrator.core.sizes import format_size
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.base import AppendResult


def announced(capabilities: Iterable[str]) -> int | None:
    """Return the APPENDLIMIT a server's capabilities announce for every mailbox, or None.

    A bare ``APPENDLIMIT`` (limits that differ by mailbox, told by STATUS) counts as none here.
    """
    for capability in capabilities:
        name, _, value = capability.partition("=")
        if name.upper() == "APPENDLIMIT" and value.isdigit():
            return int(value)
    return None


def append_limit(capabilities: Iterable[str], endpoint: Endpoint) -> tuple[int | None, str]:
    """Return the limit that applies, the lower of the announced and the configured one, and where it is from."""
    server = announced(capabilities)
    configured, why = _configured(endpoint)
    if server is not None and (configured is None or server <= configured):
        return server, "its APPENDLIMIT"
    return configured, why


def _configured(endpoint: Endpoint) -> tuple[int | None, str]:
    """Return the limit the endpoint gives (append_limit=) or its preset knows, and where it is from."""
    if endpoint.limits.append_limit is not None:
        return endpoint.limits.append_limit, "the append_limit given for it"
    preset = endpoint.preset
    if preset is not None and preset.limits.append_limit is not None:
        return preset.limits.append_limit, f"{preset.title}'s default; give append_limit= if yours allows more"
    return None, ""


def split_oversized(messages: Sequence[Message], limit: int | None, why: str, account: str
                    ) -> tuple[list[Message], dict[int, AppendResult]]:
    """Return the messages to send, and a failed result by index for each one over ``limit``."""
    if limit is None:
        return list(messages), {}
    refused = {index: AppendResult(message, error=f"not sent: it is {message.size} bytes "
                                   f"({format_size(message.size)}), over the {format_size(limit)} that "
                                   f"{account} takes in one message ({why})")
               for index, message in enumerate(messages) if message.size > limit}
    return [m for i, m in enumerate(messages) if i not in refused], refused


def merged(messages: Sequence[Message], refused: dict[int, AppendResult], sent: Sequence[AppendResult]
           ) -> list[AppendResult]:
    """Return a result per message of ``messages``, in order: the refused ones' and the sent ones'."""
    results = iter(sent)
    return [refused[index] if index in refused else next(results) for index in range(len(messages))]
