"""A real demo: a throwaway Dovecot with sample mail, backed up with `migrator copy`, then listed.

Run as root with ``python -m harness.demo [OUTPUT_DIR]`` (``.ci/demo`` does the setup first).
Every step is the real command line, printed before it runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.corpus import corpus, seed_items, server_safe
from harness.dovecot import DovecotServer


def run(*args: str) -> None:
    """Print and run ``migrator ARGS``; stop the demo if it fails."""
    print(f"\n$ migrator {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "migrator", *args])
    if done.returncode != 0:
        sys.exit(f"demo: `migrator {args[0]}` exited with {done.returncode}")


def main() -> None:
    """Start the server, seed it, back it up to Maildir and mbox, list and verify the copies."""
    output = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="migrator-demo-"))
    with DovecotServer() as server:
        user = server.add_user("demo", "demo-password")
        messages = server_safe(corpus())
        server.seed(user, seed_items(messages))
        os.environ["DEMO_PASSWORD"] = user.password
        source = (f"imaps://demo@{server.host}:{server.ports['imaps']}"
                  f"?password_env=DEMO_PASSWORD&ca_file={server.ca_file}")
        print(f"A throwaway Dovecot on {server.host} holds {len(messages)} sample messages for user 'demo'.")
        run("folders", source)
        run("copy", source, f"maildir:{output}/Maildir", f"mbox:{output}/mbox", "--state", f"{output}/state.sqlite")
        run("folders", f"maildir:{output}/Maildir")
        run("folders", f"mbox:{output}/mbox")
        run("verify", source, f"maildir:{output}/Maildir")
        run("copy", source, f"maildir:{output}/Maildir", f"mbox:{output}/mbox", "--state", f"{output}/state.sqlite")
    print(f"\nThe backups are in {output} (the second copy found nothing new to fetch).")
    print(f"This clone's migrator is {Path(sys.executable).parent / 'migrator'}; to have `migrator` on your PATH,"
          " install it: `pipx install .` (README, Install).")


if __name__ == "__main__":
    main()
