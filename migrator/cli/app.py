"""The typer application and the one error boundary that turns errors into exit codes."""

from __future__ import annotations

import gc
import signal
import sys
import traceback as tracebacks
from pathlib import Path

import typer

from migrator.cli.diagnostics import global_options_first, start_logging
from migrator.cli.help import MAIN
from migrator.cli.memory import tune_allocator
from migrator.core.errors import ExitCode, Interrupted, MigratorError
from migrator.core.stopping import stop_on_signals


def _exit_with_status(status: int | None, **_: object) -> None:
    # Commands return their exit status; standalone typer would otherwise exit 0.
    if status:
        raise typer.Exit(int(status))


app = typer.Typer(
    result_callback=_exit_with_status,
    help="Copy, back up and migrate mailboxes: IMAP, POP3, Maildir, mbox, EML and Outlook PST, byte for byte.",
    epilog=MAIN,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: real argument names and types, no <str> columns or boxes
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"migrator {installed_version()}")
        raise typer.Exit()


def installed_version() -> str:
    """Return the installed package's version, which pyproject.toml alone defines."""
    from importlib import metadata  # imported when asked: it adds to every start otherwise

    try:
        return metadata.version("migrator")
    except metadata.PackageNotFoundError:
        return "(version unknown: not installed; run pip install -e . in the source tree)"


@app.callback()
def _options(
    traceback: bool = typer.Option(False, "--traceback", help="Show the full traceback of an error (for bug reports)."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print migrator's version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Say what the run does: connections, folders, batches, reconnections."),
    debug_imap: bool = typer.Option(False, "--debug-imap", help="Trace every IMAP line (passwords as ***)."),
    debug_pop3: bool = typer.Option(False, "--debug-pop3", help="Trace every POP3 line (passwords as ***)."),
    debug_file: Path | None = typer.Option(None, "--debug-file", metavar="FILE",
                                           help="Write -v and the traces to FILE instead of stderr."),
) -> None:
    # --traceback is acted on by main(), after the command has unwound: declared here for parsing and help.
    start_logging(verbose, debug_imap, debug_pop3, debug_file)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status; never show a traceback for user errors.

    typer prints usage errors itself (status 2); migrator's own errors are printed here.
    """
    args = global_options_first(sys.argv[1:] if argv is None else argv)
    try:
        with stop_on_signals():
            app(args=args, prog_name="migrator")
    except SystemExit as done:
        # typer turns Ctrl-C into a silent exit 130: the signal that stopped the run is found behind it.
        stopped = _interruption(done)
        if stopped is not None:
            return _report_stop(stopped)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else int(ExitCode.USAGE))
    except MigratorError as error:
        if _wants_traceback(args):
            tracebacks.print_exc()  # in addition to the sentence: the exit status stays the error's
        typer.echo(f"migrator: {error}", err=True)
        return int(error.exit_code)
    except KeyboardInterrupt as stopped:
        return _report_stop(Interrupted.of(stopped))
    return 0


def _interruption(error: BaseException) -> Interrupted | None:
    """Return the Interrupted ``error`` was raised while handling, if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return Interrupted.of(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _report_stop(stopped: Interrupted) -> int:
    """Say in one line that a signal stopped the run and what of it is kept; return 128 + the signal."""
    kept = "what was copied is kept,"
    if stopped.discarded:
        # A file finished only at the end of a run (PST) was thrown away, not left half written.
        files = ", ".join(stopped.discarded)
        kept = f"what was copied is kept, except in {files}, which stays as it was before this run;"
    typer.echo(f"migrator: stopped by {signal.Signals(stopped.signum).name}; {kept} rerun to continue", err=True)
    return stopped.exit_code


def _wants_traceback(args: list[str]) -> bool:
    # Read from the arguments, not kept in the environment: a second main() in one process (tests) starts afresh.
    options = args[:args.index("--")] if "--" in args else args
    return "--traceback" in options


def entry_point() -> None:
    """Console-script entry: exit with main()'s status."""
    tune_allocator()
    status = main()
    # The interpreter's last collection would walk every object the run made only to free what the process
    # hands back on exit anyway: 18 ms of a 0.25 s nightly rerun. Nothing is left for it to close or flush: the
    # commands close their stores and state files themselves, and logging's handlers are flushed at exit.
    gc.freeze()
    sys.exit(status)
