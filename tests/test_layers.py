"""The layers the folder names show, held by a check that fails on an import going the wrong way.

From the top: the command line, batches of accounts, profiles, the pipeline (copy and verify), then
the stores and the state file side by side (neither knows the other), endpoints, and the core every
layer shares. A
module may import its own layer and those below it. Inside the stores, each kind of store stands on
its own: it may use the stores' shared parts (base, folder names, local files, network) and nothing
of another kind, except where one kind is another's layout (Thunderbird keeps mbox files). The PST
package has the layers of its specification, MS-PST: the conversion to and from MIME above the messaging
layer, above LTP (lists, tables, properties), above NDB (the node database).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom; packages in one row are independent of each other. A module outside every row of
# a contract (migrator/stores/pst/store.py in the PST one) may use them all.
LAYERS = [
    ["migrator.cli"],
    ["migrator.batch"],
    ["migrator.profile"],
    ["migrator.pipeline"],
    ["migrator.stores", "migrator.state"],
    ["migrator.endpoints"],
    ["migrator.core"],
]
PST_LAYERS = [
    ["migrator.stores.pst.convert"],
    ["migrator.stores.pst.messaging"],
    ["migrator.stores.pst.ltp"],
    ["migrator.stores.pst.ndb"],
]
STORE_SHARED = ["migrator.stores", "migrator.stores.base", "migrator.stores.foldernames",
                "migrator.stores.local", "migrator.stores.network"]
STORE_KINDS = ["migrator.stores.imap", "migrator.stores.pop3", "migrator.stores.maildir", "migrator.stores.mbox",
               "migrator.stores.thunderbird", "migrator.stores.eml", "migrator.stores.pst"]
KIND_USES_KIND = {("migrator.stores.thunderbird", "migrator.stores.mbox")}
# Development code the installed package never has.
OUTSIDE = ("harness", "tests", "bench")


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """Return (line, module) for every import in ``path``, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from migrator.stores import open_store` and `from migrator.cli import scheduling` alike:
            # the names may be submodules, so each counts as module.name when that is a package's module.
            found += [(node.lineno, _submodule_or_module(node.module, alias.name, root)) for alias in node.names]
    return found


def _submodule_or_module(module: str, name: str, root: Path) -> str:
    candidate = root.joinpath(*module.split("."), name)
    return f"{module}.{name}" if candidate.with_suffix(".py").exists() or candidate.is_dir() else module


def layer_of(module: str, layers: list[list[str]]) -> tuple[int, str] | None:
    for depth, row in enumerate(layers):
        for package in row:
            if within(module, package):
                return depth, package
    return None


def kind_of(module: str) -> str | None:
    return next((kind for kind in STORE_KINDS if within(module, kind)), None)


def wrong_import(importer: str, imported: str) -> str | None:
    """Return why ``importer`` may not import ``imported``, or None when it may."""
    if imported.split(".")[0] in OUTSIDE:
        return "the package imports development code"
    for layers in (LAYERS, PST_LAYERS):
        mine, theirs = layer_of(importer, layers), layer_of(imported, layers)
        if mine is None or theirs is None:
            continue
        if theirs[0] < mine[0]:
            return f"{mine[1]} is below {theirs[1]}"
        if theirs[0] == mine[0] and theirs[1] != mine[1]:
            return f"{mine[1]} and {theirs[1]} are independent"
    importer_kind, imported_kind = kind_of(importer), kind_of(imported)
    if (imported_kind and importer_kind != imported_kind and (importer_kind, imported_kind) not in KIND_USES_KIND
            and any(within(importer, shared) for shared in STORE_SHARED + STORE_KINDS)
            and importer != "migrator.stores"):
        return f"{importer_kind or 'the stores shared parts'} may not use {imported_kind}"
    return None


def wrong_imports(root: Path) -> list[str]:
    """Return one line per import in ``root``'s migrator package that goes against the layers."""
    problems = []
    for path in sorted((root / "migrator").rglob("*.py")):
        importer = module_name(path, root)
        for line, imported in imports_of(path, root):
            reason = wrong_import(importer, imported)
            if reason:
                problems.append(f"{path.relative_to(root)}:{line}: imports {imported}: {reason}")
    return problems


def test_no_import_goes_against_the_layers() -> None:
    assert wrong_imports(ROOT) == []


def test_every_package_of_migrator_has_its_place() -> None:
    # A new top-level package must be put in a layer, or the check above would not look at it.
    packages = {f"migrator.{p.name}" for p in (ROOT / "migrator").iterdir() if (p / "__init__.py").exists()}
    assert packages == {package for row in LAYERS for package in row}
    kinds = {f"migrator.stores.{p.stem}" for p in (ROOT / "migrator" / "stores").iterdir()
             if (p / "__init__.py").exists() or (p.suffix == ".py" and p.stem != "__init__")} - set(STORE_SHARED)
    assert kinds == set(STORE_KINDS)
    layers = {f"migrator.stores.pst.{p.name}" for p in (ROOT / "migrator" / "stores" / "pst").iterdir()
              if (p / "__init__.py").exists()}
    assert layers == {package for row in PST_LAYERS for package in row}


def write(root: Path, module: str, text: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if parent != Path("."):
            (root / parent / "__init__.py").touch()
    path.write_text(text)


def test_the_check_finds_an_upward_import_a_sibling_and_another_store(tmp_path: Path) -> None:
    write(tmp_path, "migrator.core.message", "from migrator.pipeline.run import run_copy\n")
    write(tmp_path, "migrator.state.statefile", "def f():\n    from migrator.stores import open_store\n")
    write(tmp_path, "migrator.stores.imap.store", "from migrator.stores.mbox import reader\n")
    write(tmp_path, "migrator.stores.mbox.reader", "from migrator.stores.local import files\n")
    write(tmp_path, "migrator.stores.local.files", "")
    write(tmp_path, "migrator.pipeline.run", "from harness.dovecot import DovecotServer\nrun_copy = None\n")
    write(tmp_path, "migrator.stores.thunderbird.store", "from migrator.stores.mbox.reader import read\n")
    write(tmp_path, "migrator.stores.pst.ndb.reader", "from migrator.stores.pst.ltp import props\n")
    write(tmp_path, "migrator.stores.pst.ltp.props", "")
    assert wrong_imports(tmp_path) == [
        "migrator/core/message.py:1: imports migrator.pipeline.run: migrator.core is below migrator.pipeline",
        "migrator/pipeline/run.py:1: imports harness.dovecot: the package imports development code",
        "migrator/state/statefile.py:2: imports migrator.stores: migrator.state and migrator.stores are independent",
        "migrator/stores/imap/store.py:1: imports migrator.stores.mbox.reader: "
        "migrator.stores.imap may not use migrator.stores.mbox",
        "migrator/stores/pst/ndb/reader.py:1: imports migrator.stores.pst.ltp.props: "
        "migrator.stores.pst.ndb is below migrator.stores.pst.ltp",
    ]
