"""What `folders`, `copy` and `verify` print: columns that line up with wide characters, names a server
cannot use to drive the terminal, counts in words that agree, and missing messages a person can recognise."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.fake import ScriptedServer, usual_answers
from migrator.cli import main
from migrator.core.display import columns, pad, plural, printable, shorten
from migrator.core.errors import ExitCode
from migrator.pipeline.summary import Failure, Summary

WHEN = datetime(2024, 3, 4, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def password_env(monkeypatch):
    def use(password: str) -> None:
        monkeypatch.setenv("MIGRATOR_TEST_PW", password)

    return use


def url(server, user) -> str:
    return (f"imaps://{user.name}@{server.host}:{server.ports['imaps']}"
            f"?password_env=MIGRATOR_TEST_PW&ca_file={server.ca_file}")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def message(number: int, subject: str = "", sender: str = "Bob <bob@example.com>") -> bytes:
    return (f"Date: Mon, 4 Mar 2024 10:0{number}:00 +0000\r\nFrom: {sender}\r\n"
            f"Subject: {subject or f'number {number}'}\r\nMessage-ID: <{number}@example.com>\r\n\r\nbody {number}\r\n"
            ).encode()


# --- the helpers ------------------------------------------------------------------------------


def test_columns_count_wide_characters_twice_and_combining_marks_not_at_all():
    assert columns("日本語") == 6
    assert columns("😀 ok") == 5
    assert columns("Cafe\u0301") == 4
    assert pad("日本語", 8) == "日本語  "


@given(st.text(), st.integers(0, 40))
def test_padding_reaches_the_width_and_shortening_never_exceeds_it(text, width):
    shown = printable(text)
    assert columns(pad(shown, width)) == max(width, columns(shown))
    assert columns(shorten(shown, max(width, 1))) <= max(width, 1)


@given(st.text())
def test_printable_leaves_no_control_character(text):
    assert all(unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp") for char in printable(text))


def test_plural():
    assert [plural(n, "folder") for n in (0, 1, 2)] == ["0 folders", "1 folder", "2 folders"]


# --- folders ---------------------------------------------------------------------------------


def test_folders_table_lines_up_wide_names(dovecot, user, password_env, capsys):
    dovecot.seed(user, [((name,), message(1), [], WHEN) for name in ("日本語", "Emoji 😀", "Cafe\u0301")])
    password_env(user.password)
    code, out, _ = run(["folders", url(dovecot, user)], capsys)
    assert code == ExitCode.OK
    header, *rows, _ = out.splitlines()
    # Where the size column ends, in terminal columns, on every line.
    ends = {columns(line[: line.index(" B") + 2]) for line in rows}
    assert ends == {columns(header[: header.index("size") + 4])}
    assert {"日本語", "Emoji 😀", "Cafe\u0301"} <= {row.split("  ")[0].rstrip() for row in rows}


def test_folders_escapes_control_characters_a_server_sends(capsys, password_env):
    names = {"LIST": lambda _: [b'* LIST () "/" "Red \x1b[31mX"', b'* LIST () "/" Bell&AAc-Ring',
                                b'* LIST () "/" INBOX', b"{tag} OK done"],
             "STATUS": lambda text: [b"* STATUS " + text.split(" ")[1].encode() + b" (MESSAGES 0 SIZE 0)",
                                     b"{tag} OK done"]}
    server = ScriptedServer(b"* OK fake ready", usual_answers(b"IMAP4rev1 NAMESPACE STATUS=SIZE", **names))
    password_env("secret")
    try:
        code, out, _ = run(["folders", f"imap://alice@127.0.0.1:{server.port}?tls=none&password_env=MIGRATOR_TEST_PW"],
                           capsys)
    finally:
        server.close()
    assert code == ExitCode.OK
    assert "\x1b" not in out and "\x07" not in out
    assert "Red \\x1b[31mX" in out and "Bell\\x07Ring" in out


def test_folders_counts_the_folders_copy_counts(dovecot, user, password_env, capsys, tmp_path):
    dovecot.seed(user, [(("Projects", "2024"), message(1), [], WHEN)])  # Projects itself holds no mail
    password_env(user.password)
    _, out, _ = run(["folders", url(dovecot, user)], capsys)
    assert re.search(r"^Projects +- +- +\(not selectable\)$", out, re.M)
    listed = re.search(r"^(\d+) folders, 1 message, \d+ B \(and 1 not selectable, not counted\)$", out, re.M)
    _, out, _ = run(["copy", url(dovecot, user), f"maildir:{tmp_path}/md", "--no-state"], capsys)
    copied = re.match(r"(\d+) folders: 1 copied", out)
    assert listed and copied and listed.group(1) == copied.group(1)


# --- copy's summary ------------------------------------------------------------------------------


def test_a_rerun_that_copies_nothing_says_so_in_words(dovecot, user, password_env, capsys, tmp_path):
    dovecot.seed(user, [(("INBOX",), message(1), [], WHEN)])
    password_env(user.password)
    args = ["copy", "--folder", "INBOX", url(dovecot, user), f"maildir:{tmp_path}/md", "--state", str(tmp_path / "s")]
    first = run(args, capsys)[1]
    assert re.match(r"1 folder \(\d+ left out\): 1 copied, 0 already there, 0 left out, 0 failed; 0.0 MB in ", first)
    out = run(args, capsys)[1]
    assert re.fullmatch(r"1 folder \(\d+ left out\): 0 copied, 1 already there, 0 left out, 0 failed; "
                        r"nothing new to copy \(\d+\.\d s\)\n", out)


def test_a_run_whose_every_message_failed_does_not_call_it_nothing_new():
    summary = Summary(folders=2, failed=3, seconds=1.25)
    assert summary.describe() == "2 folders: 0 copied, 0 already there, 0 left out, 3 failed; nothing copied (1.2 s)"


# --- verify --details ----------------------------------------------------------------------------


def test_verify_details_describe_missing_messages(dovecot, make_user, monkeypatch, capsys):
    source, target = make_user(), make_user()
    long_subject = "A subject much longer than any terminal line should have to hold for one message " * 2
    raws = [message(1), message(2, "=?utf-8?q?R=C3=A9sum=C3=A9_=1B[2J?=", "Ann <ann@example.com>"),
            message(3, long_subject)]
    dovecot.seed(source, [(("INBOX",), raw, [], WHEN) for raw in raws])
    dovecot.seed(target, [(("INBOX",), raws[0], [], WHEN)])
    monkeypatch.setenv("MIGRATOR_TEST_PW", source.password)
    monkeypatch.setenv("TARGET_PW", target.password)
    target_url = url(dovecot, target).replace("MIGRATOR_TEST_PW", "TARGET_PW")
    code, out, _ = run(["verify", "--folder", "INBOX", url(dovecot, source), target_url, "--details"], capsys)
    assert code == 1
    assert ("    missing: source message 2: Mon, 4 Mar 2024 10:02:00 +0000, from Ann <ann@example.com>, "
            '"Résumé \\x1b[2J", <2@example.com>') in out
    third = next(line for line in out.splitlines() if line.startswith("    missing: source message 3"))
    assert third.endswith('"A subject much longer than any terminal line shou…", <3@example.com>')
    assert "\x1b" not in out


def test_a_failed_folder_is_counted_in_the_summary_not_only_its_messages():
    summary = Summary(folders=2, seconds=0.5)
    summary.fail(Failure("INBOX", "cannot lock the mbox: No space left on device"))
    assert summary.describe() == ("2 folders: 0 copied, 0 already there, 0 left out, 0 failed, 1 folder failed; "
                                  "nothing copied (0.5 s)")
