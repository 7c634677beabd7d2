"""Thunderbird's mail directories (``thunderbird:PATH``): the mbox store with Thunderbird's layout and headers.

PATH is a mail directory of a Thunderbird profile, ``Mail/Local Folders`` or an account's
``ImapMail/SERVER`` (its offline cache), or a directory to write one into: a folder is an mbox
file without an extension, its subfolders are in ``NAME.sbd`` (tree.py), and each message carries
the X-Mozilla-Status, X-Mozilla-Status2 and X-Mozilla-Keys headers Thunderbird reads its flags
and tags from (mozilla.py). Thunderbird builds its summary files (``NAME.msf``) itself when it
finds a folder without one, so a directory written here can be put into a profile's Local
Folders (with Thunderbird closed) or imported with ImportExportTools NG.

Everything else is MboxStore's: appends under locks, the hidden index beside each file that
says which header lines migrator added (they are left out again when migrator reads its own
messages; another program's are read as Thunderbird shows them), and the cut of a killed append.
The dotlock is hidden too (``.NAME.lock``): Thunderbird takes no dotlocks, and would list a
visible one as a folder.
"""

from __future__ import annotations

from pathlib import Path

from migrator.core.folder import Folder, Role, role_by_name
from migrator.core.message import FolderPath
from migrator.endpoints.endpoint import Endpoint
from migrator.stores.mbox.store import MboxStore
from migrator.stores.thunderbird.mozilla import THUNDERBIRD
from migrator.stores.thunderbird.tree import ThunderbirdTree


class ThunderbirdStore(MboxStore):
    """A Thunderbird mail directory (``thunderbird:PATH``), or a single mbox file of one for reading."""

    dialect = THUNDERBIRD
    description = "Thunderbird mail directory"

    def __init__(self, endpoint: Endpoint, *, readonly: bool = True) -> None:
        super().__init__(endpoint, readonly=readonly)
        self.files = ThunderbirdTree(self.root)

    def list_folders(self) -> list[Folder]:
        """Return every folder of the directory, parents before children (a symbolic link too: reading it
        fails, naming it)."""
        if self.root.is_file():
            return [Folder(("INBOX",), Role.INBOX)]
        return [Folder(path, role_by_name(path)) for path, _, _ in self.files.walk()]

    def _mbox_path(self, folder: FolderPath) -> Path | None:
        if self.root.is_file():
            return self.root if folder == ("INBOX",) else None
        return self.files.find(folder)

    def _create_folder(self, folder: FolderPath) -> None:
        path = self._mbox_path(folder)
        if path is None or not (path.is_file() or path.is_symlink()):  # a link is refused when written to
            self.files.create(folder)

    def _is_lock(self, name: str) -> bool:
        """Return True for a hidden dotlock ``.NAME.lock``."""
        return name.startswith(".") and name.endswith(".lock") and len(name) > len("..lock")

    def _lock_path(self, path: Path) -> Path:
        """Return the hidden dotlock of the folder file ``path``."""
        return path.with_name(f".{path.name}.lock")
