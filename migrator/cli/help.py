"""What `--help` shows beyond each option: the usage line, endpoint forms, server options, exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer.core

from migrator.endpoints.kinds import KINDS, LOCAL_KINDS, SERVER_KINDS
from migrator.endpoints.presets import PRESETS

if TYPE_CHECKING:
    # The Context typer's commands are called with: typer 0.28 vendors click as typer._click.
    from typer._click import Context

# "\b" keeps click from rewrapping the paragraph that follows, so the columns stay aligned.


def _endpoint_lines() -> list[str]:
    lines = []
    for kind in KINDS.values():
        for scheme in kind.schemes:
            how = "over TLS" if scheme.tls == "implicit" else "with STARTTLS"
            only = "" if kind.can_be_target else "; a source only"
            lines.append(
                f"  {scheme.name + '://USER@HOST[:PORT]':<27}{kind.name.upper()} {how} (port {scheme.port}){only}"
            )
    lines.append("  " + "  ".join(f"{name}:PATH" for name in LOCAL_KINDS) + "   local archives")
    lines.append(f"  {'PROVIDER:ADDRESS':<27}IMAP at {', '.join(PRESETS)}: its server, login and limits")
    return lines


def _auth_methods() -> str:
    return "; ".join(f"{name.upper()}: {', '.join(KINDS[name].auth_methods)}" for name in SERVER_KINDS)


ENDPOINTS = "\n".join([
    "\b", "Endpoints:", *_endpoint_lines(), "",
    "\b", "Server options (after '?', joined by '&'; quote the endpoint in the shell):",
    "  ?password_env=VAR        the password is in this environment variable",
    "  ?password_file=PATH      ... on the first line of this file",
    "  ?password_command=CMD    ... printed by this command",
    "  ?admin_user=NAME         an admin logs in for USER (SASL PLAIN), with the admin's password from",
    "                           admin_password_env=VAR, admin_password_file=PATH or admin_password_command=CMD",
    "  ?ca_file=PATH            trust this CA certificate (PEM)",
    "  ?tls=implicit|starttls|none",
    f"  ?auth=METHOD             {_auth_methods()}",
    "  ?token_command=CMD       with auth=xoauth2: an OAuth2 access token from a helper (or token_file, token_env)",
    "  ?client_id=ID            with auth=xoauth2: your OAuth2 client; sign in once with `migrator login ENDPOINT`",
    "  ?max_bytes_per_second=SIZE, ?max_messages_per_second=N, ?connections=N, ?append_limit=SIZE",
    "                           limits for this server (a PROVIDER: endpoint has its provider's)",
    "  e.g. 'imaps://alice@mail.example.com?password_env=PW&ca_file=ca.pem', 'gmail:alice@gmail.com?password_env=PW'",
])

EXIT_CODES = """\
\b
Exit codes:
  0    everything was copied
  1    some messages or folders failed; the rest was copied
  2    bad usage, endpoint, option or profile: nothing ran
  3    could not connect or log in
  4    another run of the same profile holds its lock
  5    a provider's limit stopped the run (Gmail's daily limit, throttling): what was copied is kept, rerun later
  129  stopped by SIGHUP (terminal closed); what was copied is kept, rerun to continue
  130  stopped by Ctrl-C (SIGINT); the same
  143  stopped by SIGTERM (kill, systemctl stop); the same"""

MAIN = ("Each command's --help shows its options; `migrator copy --help` also the endpoint forms and "
        "server options.\n\n" + EXIT_CODES)


class Command(typer.core.TyperCommand):
    """A command whose usage line names its arguments as written in the help (SOURCE TARGET...)."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """Return the usage line's pieces: the options marker, then each argument's metavar."""
        # Some typer releases write required arguments as {source} {targets}..., which no one can read.
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces
