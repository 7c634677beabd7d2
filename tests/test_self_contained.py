"""A clone is all a user has: no test, script, profile or default may name a path outside it.

A path written in a tracked file that exists on this machine outside the repository (and outside
the operating system's own directories) is one a user's machine would not have: the suite would
pass here and fail there, as it once did with the Outlook sample files.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where the operating system keeps what the tests may use: programs, their configuration, /proc.
SYSTEM = tuple(Path(p) for p in ("/usr", "/etc", "/proc", "/sys", "/dev", "/run", "/tmp", "/bin", "/sbin",
                                  "/lib", "/lib64", "/var"))
TEXT_SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt", ""}
# Absolute paths and relative ones that climb (``../x``), as they appear in code, scripts and YAML.
PATH_WORD = re.compile(r"(?<![\w.~$/])(?:/|(?:\.\./)+)[\w@+-][\w.@+-]*(?:/[\w.@+-]+)*")


def tracked_text_files() -> list[Path]:
    """Return the tracked files whose names say they are code, scripts or configuration."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [ROOT / name for name in names.decode().split("\0") if name]
    return [f for f in files if f.suffix in TEXT_SUFFIXES and f.is_file()]


def outside_paths(text: str, where: Path, root: Path = ROOT, system: tuple[Path, ...] = SYSTEM) -> list[str]:
    """Return the path-like words in ``text`` (found in folder ``where``) that exist outside ``root`` and ``system``."""
    found = []
    for word in PATH_WORD.findall(text):
        candidates = [Path(word)] if word.startswith("/") else [where / word, root / word]
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved.exists() and not _inside(resolved, root) and not any(_inside(resolved, s) for s in system):
                found.append(word)
                break
    return found


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def test_no_tracked_file_names_a_path_outside_the_clone() -> None:
    offenders = []
    for file in tracked_text_files():
        for number, line in enumerate(file.read_text(errors="replace").splitlines(), 1):
            offenders += [f"{file.relative_to(ROOT)}:{number}: {word}" for word in outside_paths(line, file.parent)]
    assert offenders == []


def test_the_check_finds_paths_beside_the_clone_however_written(tmp_path: Path) -> None:
    clone, beside = tmp_path / "clone", tmp_path / "beside" / "pst-samples"
    (clone / "tests" / "data").mkdir(parents=True)
    beside.mkdir(parents=True)

    def found(line: str, where: Path) -> list[str]:
        return outside_paths(line, where, root=clone, system=())

    assert found(f'SAMPLES = Path("{beside}")', clone / "tests") == [str(beside)]
    assert found('SAMPLES = Path("../../beside/pst-samples")', clone / "tests") == ["../../beside/pst-samples"]
    assert found("cp ../beside/pst-samples/*.pst .", clone) == ["../beside/pst-samples"]
    assert found('SAMPLES = Path("../tests/data")', clone / "tests") == []
    assert found('SAMPLES = Path("/no/such/place")', clone) == []
