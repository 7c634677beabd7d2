"""Folders of an IMAP account: listing with special-use roles, finding a role's folder, creating."""

from __future__ import annotations

from collections.abc import Iterable

from migrator.core.errors import FolderError
from migrator.core.folder import USUAL_NAMES, Folder, FolderIndex, Role, role_by_name
from migrator.core.message import FolderPath
from migrator.stores.base import FolderProbe
from migrator.stores.imap.commands import astring
from migrator.stores.imap.names import NameCodec
from migrator.stores.imap.parser import ListEntry, as_text, list_entry, status_items
from migrator.stores.imap.session import Session

ROLE_ATTRIBUTES = {
    "\\sent": Role.SENT,
    "\\drafts": Role.DRAFTS,
    "\\trash": Role.TRASH,
    "\\junk": Role.JUNK,
    "\\archive": Role.ARCHIVE,
    "\\all": Role.ALL,
    "\\flagged": Role.FLAGGED,
    "\\important": Role.IMPORTANT,
}
# HIGHESTMODSEQ moves on every flag change (CONDSTORE); the others on arrivals and expunges.
_VERSION_NAMES = ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")
VERSION_ITEMS = b"(" + " ".join(_VERSION_NAMES).encode() + b")"
_UNSELECTABLE = ("\\noselect", "\\nonexistent")


def list_entries(session: Session) -> tuple[list[ListEntry], dict[str, dict[str, int]]]:
    """Return every LIST entry of the account and, where the server can say it in the same
    command (LIST-STATUS with CONDSTORE), each folder's STATUS numbers by server name."""
    command = b'LIST "" "*"'
    returns = []
    if {"SPECIAL-USE", "LIST-EXTENDED"} <= session.capabilities:
        returns.append(b"SPECIAL-USE")
    if {"LIST-STATUS", "CONDSTORE"} <= session.capabilities:
        returns.append(b"STATUS " + VERSION_ITEMS)
    if returns:
        command += b" RETURN (" + b" ".join(returns) + b")"
    reply = session.protocol.run(command)
    if not reply.result.ok:
        raise FolderError(f"cannot list the folders of {session.where}: the server said {reply.result.said()!r}")
    statuses = {as_text(r.data[0]): status_items(r) for r in reply.of_kind("STATUS")}
    return [list_entry(response) for response in reply.of_kind("LIST")], statuses


def folders_from(
    entries: Iterable[ListEntry], codec: NameCodec, statuses: dict[str, dict[str, int]] | None = None
) -> tuple[list[Folder], dict[FolderPath, str]]:
    """Return the folders (INBOX first, parents before children) and each path's server name."""
    folders: dict[FolderPath, Folder] = {}
    names: dict[FolderPath, str] = {}
    for entry in entries:
        path = codec.path_of(entry.name, entry.separator)
        if path not in folders:
            folders[path] = _folder(path, entry, (statuses or {}).get(entry.name))
            names[path] = entry.name
    for path in list(folders):
        for depth in range(1, len(path)):
            folders.setdefault(path[:depth], Folder(path[:depth], selectable=False))
    ordered = sorted(_roles_by_name(folders.values()), key=lambda f: (f.path != ("INBOX",), f.path))
    return ordered, names


def _roles_by_name(folders: Iterable[Folder]) -> list[Folder]:
    """Return ``folders``, each with the role its usual name implies when LIST marked none with a role.

    A server without SPECIAL-USE (Courier) has its Sent and Trash by name alone. Where LIST
    marks some folder, the others are ordinary folders, whatever their names.
    """
    folders = list(folders)
    if any(folder.role not in (None, Role.INBOX) for folder in folders):
        return folders
    return [f._replace(role=role_by_name(f.path)) if f.selectable and f.role is None else f for f in folders]


def _folder(path: FolderPath, entry: ListEntry, status: dict[str, int] | None) -> Folder:
    if path == ("INBOX",):
        role: Role | None = Role.INBOX
    else:
        role = next((r for attribute, r in ROLE_ATTRIBUTES.items() if entry.has(attribute)), None)
    return Folder(path, role, _selectable(entry), _version(status))


def _selectable(entry: ListEntry) -> bool:
    return not any(entry.has(attribute) for attribute in _UNSELECTABLE)


def probe_of(status: dict[str, int]) -> FolderProbe | None:
    """Return the folder's identity (UIDVALIDITY) and message count from its STATUS numbers, if both are there."""
    if "UIDVALIDITY" not in status or "MESSAGES" not in status:
        return None
    return FolderProbe(str(status["UIDVALIDITY"]), status["MESSAGES"])


def _version(status: dict[str, int] | None) -> str | None:
    """Return a token that changes whenever a message arrives, leaves or changes flags."""
    if not status or any(item not in status for item in _VERSION_NAMES):
        return None
    return ".".join(str(status[item]) for item in _VERSION_NAMES)


def version_numbers(version: str) -> dict[str, int] | None:
    """Return the STATUS numbers a folder version token was made of, or None when it is not one of ours."""
    parts = version.split(".")
    if len(parts) != len(_VERSION_NAMES) or not all(part.isdigit() for part in parts):
        return None
    return dict(zip(_VERSION_NAMES, map(int, parts)))


def existing_folder(folders: FolderIndex, path: FolderPath, role: Role | None) -> FolderPath | None:
    """Return the existing folder that mail of ``path`` (with ``role``) goes to, or None when it is to be created."""
    if role is not None:
        return role_folder(folders, path, role)
    return path if folders.selectable(path) else None


def role_folder(folders: Iterable[Folder], path: FolderPath, role: Role) -> FolderPath | None:
    """Return the existing folder that should take mail of ``role``, or None.

    First a folder marked with the role (RFC 6154), then one named like ``path``, then the
    names servers without SPECIAL-USE usually give that role.
    """
    selectable = [f for f in folders if f.selectable]
    marked = [f.path for f in selectable if f.role is role]
    if marked:
        return path if path in marked else marked[0]
    by_name = {_folded(f.path): f.path for f in selectable}
    for name in (_folded(path), *(n.casefold() for n in USUAL_NAMES.get(role, ()))):
        if name in by_name:
            return by_name[name]
    return None


def _folded(path: FolderPath) -> str:
    return "/".join(path).casefold()


def create_folder(session: Session, path: FolderPath, folders: FolderIndex) -> None:
    """Create ``path`` unless it is a selectable folder already, with any parent not listed.

    Subscribe to what was created and add it to ``folders``, rather than listing them again: a
    LIST after every CREATE made each of 5 000 folders cost 153 ms, against 25 ms among 100
    (bench/folders.py). Raise FolderError.
    """
    for depth in range(1, len(path)):
        if folders.get(path[:depth]) is None:
            _create_one(session, path[:depth], folders, parent=True)
    if not folders.selectable(path):
        _create_one(session, path, folders, parent=False)


def _create_one(session: Session, path: FolderPath, folders: FolderIndex, *, parent: bool) -> None:
    """CREATE ``path`` and note it in ``folders``; raise FolderError when it is not there afterwards.

    A CREATE that fails may have failed because the folder is there: another connection of
    the same run made it a moment ago, or the server made it a placeholder for a child.
    Servers say so in their own words or not at all (Cyrus: "Mailbox already exists",
    Courier: "Cannot create this folder."), so LIST decides: a parent may be a placeholder
    (\\Noselect), the folder itself must hold messages.
    """
    name = session.server_name(path)
    result = session.protocol.run(b"CREATE ", astring(name)).result
    selectable = True
    if not result.ok:
        entry = session.listed(name)
        selectable = entry is not None and _selectable(entry)
        if entry is None or not (selectable or parent):
            raise FolderError(
                f"cannot create the folder {'/'.join(path)} on {session.where}: the server said {result.said()!r}")
    # A failed SUBSCRIBE only hides the folder in some mail clients: the copy goes on.
    session.protocol.run(b"SUBSCRIBE ", astring(name))
    session.known_names[path] = name
    folders.created(path, selectable=selectable)
