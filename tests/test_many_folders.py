"""Many folders: a copy into a server lists its folders once, not again after every folder it creates.

How the cost per folder stays flat from 10 to 5 000 folders is measured by `python -m bench.folders`;
this checks the one thing about it a test can see without timing: the commands the server received.
"""

from __future__ import annotations

from migrator.endpoints.endpoint import parse_endpoint
from migrator.pipeline.options import CopyOptions
from migrator.pipeline.run import run_copy

FOLDERS = 30


def test_a_copy_into_a_server_lists_its_folders_once(dovecot, user, tmp_path, monkeypatch):
    for number in range(FOLDERS):
        folder = tmp_path / "source" / f"Folder {number:02d}"
        folder.mkdir(parents=True)
        message = f"Subject: {number}\r\nMessage-ID: <{number}@many.test>\r\n\r\nbody\r\n"
        (folder / "000001.eml").write_bytes(message.encode())
    monkeypatch.setenv("MANY_PW", user.password)
    target = (f"imaps://{user.name}@{dovecot.host}:{dovecot.ports['imaps']}"
              f"?password_env=MANY_PW&ca_file={dovecot.ca_file}")
    dovecot.enable_rawlog(user)
    summary = run_copy(parse_endpoint(f"eml:{tmp_path / 'source'}"), [parse_endpoint(target)],
                       CopyOptions(connections=1))
    assert summary.failures == [] and summary.copied == FOLDERS
    words = [command.split(" ", 1)[0].upper() for command in dovecot.imap_commands(user)]
    assert words.count("CREATE") == FOLDERS
    assert words.count("LIST") == 1
