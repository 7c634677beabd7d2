"""The typer application and the one error boundary that turns errors into exit codes."""

from __future__ import annotations

import os
import sys

import click
import typer

from migrator.errors import ExitCode, MigratorError

app = typer.Typer(
    help="Copy, back up and migrate mailboxes: IMAP, POP3, Maildir, mbox, EML and Outlook PST, byte for byte.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    traceback: bool = typer.Option(False, "--traceback", help="Show the full traceback of an error (for bug reports)."),
) -> None:
    if traceback:
        os.environ["MIGRATOR_TRACEBACK"] = "1"


def fail(message: str, code: ExitCode) -> "typer.Exit":
    """Print ``message`` as an error on stderr and return the Exit to raise."""
    typer.echo(f"migrator: {message}", err=True)
    return typer.Exit(int(code))


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status; never show a traceback for user errors."""
    try:
        result = app(args=argv, prog_name="migrator", standalone_mode=False)
    except MigratorError as error:
        if os.environ.get("MIGRATOR_TRACEBACK"):
            raise
        typer.echo(f"migrator: {error}", err=True)
        return int(error.exit_code)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort):
        typer.echo("migrator: interrupted; rerun to continue where this run stopped", err=True)
        return 130
    return int(result or 0)


def entry_point() -> None:
    """Console-script entry: exit with main()'s status."""
    sys.exit(main())
