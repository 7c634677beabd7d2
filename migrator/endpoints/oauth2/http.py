"""Talk to a token endpoint: a form POSTed, a JSON object back, and its errors in the provider's own words."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from migrator.core.errors import ConnectError

TIMEOUT = 30.0


class TokenEndpointError(ConnectError):
    """The provider answered with an OAuth2 error (RFC 6749 5.2): ``error`` and its ``description``."""

    def __init__(self, text: str, error: str, description: str) -> None:
        super().__init__(text)
        self.error = error
        self.description = description


def post_form(url: str, fields: dict[str, str], what: str) -> dict[str, object]:
    """Return the JSON object ``url`` answers to ``fields``; raise TokenEndpointError for an OAuth2 error,
    ConnectError when the endpoint cannot be reached or answers something else. ``what`` names the request."""
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=body, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return _json(response.read(), url, what)
    except urllib.error.HTTPError as failure:
        answer = _json(failure.read(), url, what, failure.code)
        error, description = str(answer.get("error", "")), str(answer.get("error_description", "")).strip()
        raise TokenEndpointError(f"{what}: {url} said {error}: {description}", error, description) from None
    except (urllib.error.URLError, OSError) as failure:
        reason = getattr(failure, "reason", None) or failure
        raise ConnectError(f"{what}: cannot reach {url}: {reason}") from None


def _json(raw: bytes, url: str, what: str, status: int = 200) -> dict[str, object]:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ConnectError(f"{what}: {url} answered HTTP {status} without a JSON object: is it a token endpoint?")
    return answer
