"""Deletion only as asked: `--delete` is POP3's download-and-delete, refused for every other source."""

from __future__ import annotations

import pytest

from harness.corpus import corpus, seed_items, server_safe
from tests.test_cli import endpoint, run_cli


def test_delete_from_an_imap_source_is_refused_before_anything_runs(dovecot, user, tmp_path, capsys):
    dovecot.seed(user, seed_items(server_safe(corpus())[:5]))
    before = dovecot.dump(user)
    code, _, err = run_cli(["copy", endpoint(dovecot, user), f"maildir:{tmp_path / 'out'}", "--delete"],
                           user.password, capsys)
    assert code == 2
    assert "--delete applies to pop3 sources only" in err and "nothing is deleted" in err
    assert dovecot.dump(user) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "pst"])
def test_delete_from_an_archive_is_refused_and_the_archive_kept(kind, dovecot, user, tmp_path, capsys):
    dovecot.seed(user, seed_items(server_safe(corpus())[:5]))
    archive = f"{kind}:{tmp_path / 'archive'}"
    assert run_cli(["copy", endpoint(dovecot, user), archive], user.password, capsys)[0] == 0
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "archive").parent.rglob("*"))
    code, _, err = run_cli(["copy", archive, f"maildir:{tmp_path / 'out'}", "--delete"], "", capsys)
    assert code == 2
    assert f"{kind}:" in err and "nothing is deleted" in err
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "archive").parent.rglob("*")) == files
