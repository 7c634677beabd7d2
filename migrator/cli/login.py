"""`migrator login ENDPOINT`: sign in with OAuth2 once; later runs of the endpoint refresh the token themselves."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import typer

from migrator.cli.app import app
from migrator.cli.help import Command

if TYPE_CHECKING:
    from migrator.endpoints.oauth2.flows import DevicePrompt


@app.command(cls=Command)
def login(
    endpoint: str = typer.Argument(..., metavar="ENDPOINT",
                                   help="An IMAP or POP3 endpoint with client_id=YOUR_CLIENT_ID (and auth=…)."),
    browser: bool = typer.Option(True, "--browser/--no-browser",
                                 help="Open the sign-in page in a browser (Google); otherwise only print it."),
    check: bool = typer.Option(True, "--check/--no-check", help="Log in to the server with the new token."),
) -> int:
    """Sign in to ENDPOINT's provider with OAuth2 and keep the refresh token (Microsoft: a device code; Google: a
    browser). The provider comes from the host, or oauth_provider=microsoft|google."""
    from migrator.endpoints.oauth2.login import log_in, login_endpoint  # imported when run: see cli/__init__.py

    target = login_endpoint(endpoint)
    done = log_in(target, show_code=_show_code, open_url=lambda url: _open(url, browser))
    typer.echo(f"Signed in to {done.provider.name} as {target.account}; the refresh token is kept in "
               f"{done.grant_file} (mode 0600).")
    if check:
        from migrator.stores import open_store

        with open_store(target):
            typer.echo(f"Logged in to {target.host} as {target.user}.")
    typer.echo("Runs of this endpoint (with the same client_id) now refresh the token themselves.")
    return 0


def _show_code(prompt: DevicePrompt) -> None:
    minutes = max(1, round(prompt.expires_in / 60))
    typer.echo(f"To sign in, open {prompt.uri} and enter the code {prompt.user_code} (within {minutes} minutes).")
    typer.echo("Waiting for the sign-in...")


def _open(url: str, browser: bool) -> None:
    typer.echo(f"To sign in, open this page (in a browser on this computer):\n  {url}")
    if browser:
        import webbrowser

        # In a thread: a browser command (BROWSER=…) may not return before the page has loaded,
        # and the page cannot load until migrator listens for the redirect.
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    typer.echo("Waiting for the browser...")
