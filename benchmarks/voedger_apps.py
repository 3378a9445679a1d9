"""How many of Voedger's own applications ``vpm compile`` compiles, as they sit in its repository.

    python -m benchmarks.voedger_apps SOURCE [--keep DIR] [--json]

SOURCE is a checkout of Voedger's repository (github.com/voedger/voedger) or its git directory (a
bare clone or a mirror: the schema files are taken from HEAD). The script copies the schema files
and the Go module files (``go.mod``, ``go.work``) into a scratch folder, finds every application (a
schema file with an APPLICATION statement), and for each writes the mapping file ``vpm.toml`` that
Voedger's Go tooling would have derived from the modules around it:

- the application package's own import path: its ``go.mod`` module, else its path in Voedger's module
  (``pkg/vit``'s embedded applications get the package paths ``pkg/vit`` gives them);
- each imported path, transitively: a module of the nearest ``go.work`` that uses it, else a module
  of the repository whose ``go.mod`` declares it (when only one does), else a folder of Voedger's
  module (``github.com/voedger/voedger/pkg/registry`` is ``pkg/registry``), else a sibling folder
  named by the path's last element (how ``pkg/parser``'s tests lay out ``sql_example_app``);
- for the folders of ``pkg/parser``'s tests, the package paths and the sys package those tests give.

A folder with several applications (``pkg/vit``) gives each its own folder. Then it runs ``vpm compile
DIR`` in a process of its own for each application and prints one line per application and the count.
Voedger itself refuses two of them on purpose (its tests expect the errors); the summary says how
many verdicts agree with Voedger's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

VOEDGER_MODULE = "github.com/voedger/voedger"
SCHEMA_SUFFIXES = (".vsql", ".sql")
_APPLICATION = re.compile(r"^\s*APPLICATION\s+\w+\s*\(", re.MULTILINE)
_IMPORT = re.compile(r"""IMPORT\s+SCHEMA\s+['"]([^'"]+)['"]""")
_MODULE = re.compile(r"^module\s+(\S+)", re.MULTILINE)
_USE_BLOCK = re.compile(r"^use\s*\(([^)]*)\)", re.MULTILINE)
_USE_LINE = re.compile(r"^use\s+([^\s(]+)", re.MULTILINE)

EXCLUDED = {
    "pkg/appdefcompat/testdata": "not an application folder: stand-ins for sys (old and new) that appdefcompat's "
    "tests compile as the sys package itself",
}
"""Folders with APPLICATION statements that are not application folders, and why."""

VIT_PACKAGES = {"schemaTestApp1": "app1pkg"}
"""pkg/vit embeds its application files as packages of these names (the others as app2pkg)."""

PARSER_TESTS = {
    "pkg/parser/sql_example_app/pmain": "github.com/untillpro/main",
    "pkg/parser/sql_example_app/vrestaurant": "github.com/untillpro/vrestaurant",
}
"""pkg/parser's tests compile these folders under these package paths, with the sys package of
``pkg/parser/sql_example_syspkg``."""
PARSER_SYS = "pkg/parser/sql_example_syspkg"

VOEDGER_REFUSES = {
    "cmd/vpm/testdata/myapperr/app": "vpm's tests expect compile errors here",
    "pkg/parser/test": "the parser's tests expect errors here (IMPORT after APPLICATION, a double-quoted path)",
}
"""Applications Voedger's own compiler refuses, on purpose."""


@dataclass
class Outcome:
    app: str
    ok: bool
    voedger_ok: bool
    seconds: float
    errors: list[str]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", "", text)


def materialize(source: Path, into: Path) -> Path:
    """Copy the schema and Go module files of Voedger's repository into ``into``."""
    wanted = ("*.vsql", "*.sql", "go.mod", "go.work")
    if (source / "HEAD").is_file() and (source / "objects").is_dir():  # a git directory
        git = ["git", f"--git-dir={source}"]
        listed = subprocess.run(
            [*git, "ls-tree", "-r", "--name-only", "HEAD"], check=True, capture_output=True, text=True
        )
        names = [n for n in listed.stdout.splitlines() if any(Path(n).match(w) for w in wanted)]
        archive = subprocess.run(
            [*git, "archive", "--format=tar", "HEAD", "--", *names], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
        return into
    for path in source.rglob("*"):
        if path.is_file() and any(path.match(w) for w in wanted) and ".git" not in path.parts:
            target = into / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return into


def schema_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SCHEMA_SUFFIXES)


def imports_of(folder: Path) -> list[str]:
    found: list[str] = []
    for f in schema_files(folder):
        found += _IMPORT.findall(_strip_comments(f.read_text(encoding="utf-8", errors="replace")))
    return found


class Modules:
    """The Go modules of the repository, and the ``go.work`` files that use them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_path: dict[str, list[Path]] = {}
        for mod in root.rglob("go.mod"):
            m = _MODULE.search(mod.read_text(encoding="utf-8", errors="replace"))
            if m:
                self.by_path.setdefault(m.group(1), []).append(mod.parent)

    def module_of(self, folder: Path) -> str | None:
        mod = folder / "go.mod"
        if mod.is_file():
            m = _MODULE.search(mod.read_text(encoding="utf-8", errors="replace"))
            return m.group(1) if m else None
        return None

    def workspace_modules(self, folder: Path) -> dict[str, Path]:
        """Modules used by the nearest go.work above ``folder`` (inside the repository)."""
        for parent in [folder, *folder.parents]:
            work = parent / "go.work"
            if work.is_file():
                text = work.read_text(encoding="utf-8", errors="replace")
                dirs = [d for block in _USE_BLOCK.findall(text) for d in block.split()] + _USE_LINE.findall(text)
                out: dict[str, Path] = {}
                for d in dirs:
                    used = (parent / d).resolve()
                    path = self.module_of(used)
                    if path:
                        out[path] = used
                return out
            if parent == self.root:
                break
        return {}

    def resolve(self, path: str, app: Path) -> Path | None:
        used = self.workspace_modules(app)
        if path in used:
            return used[path]
        candidates = self.by_path.get(path, [])
        if len(candidates) == 1:
            return candidates[0]
        if path.startswith(VOEDGER_MODULE + "/"):
            folder = self.root / path[len(VOEDGER_MODULE) + 1 :]
            if folder.is_dir():
                return folder
        sibling = app.parent / path.rstrip("/").rsplit("/", 1)[-1]
        return sibling if sibling.is_dir() and schema_files(sibling) else None


def applications(root: Path) -> tuple[list[tuple[str, Path, str]], list[str]]:
    """(name, folder, own import path) of every application, split so that each folder holds one;
    and the notes about what was left out."""
    apps: list[tuple[str, Path, str]] = []
    notes: list[str] = []
    folders: dict[Path, list[Path]] = {}
    for f in sorted(p for s in SCHEMA_SUFFIXES for p in root.rglob(f"*{s}")):
        if _APPLICATION.search(_strip_comments(f.read_text(encoding="utf-8", errors="replace"))):
            folders.setdefault(f.parent, []).append(f)
    modules = Modules(root)
    for folder, files in sorted(folders.items()):
        rel = folder.relative_to(root).as_posix()
        if rel in EXCLUDED:
            notes.append(f"left out {rel}: {EXCLUDED[rel]}")
            continue
        own = PARSER_TESTS.get(rel) or modules.module_of(folder) or f"{VOEDGER_MODULE}/{rel}"
        if len(files) == 1:
            apps.append((rel, folder, own))
            continue
        others = [f for f in schema_files(folder) if f not in files]
        for f in files:
            split = folder.parent / f"{folder.name}.{f.stem}"
            split.mkdir()
            for g in [f, *others]:
                shutil.copy2(g, split / g.name)
            pkg = VIT_PACKAGES.get(f.stem, "app2pkg") if rel == "pkg/vit" else f.stem
            apps.append((f"{rel}/{f.name}", split, f"{VOEDGER_MODULE}/{rel}/{pkg}"))
    return apps, notes


def write_mapping(app: Path, own: str, modules: Modules) -> list[str]:
    """Write ``vpm.toml`` for the application; the import paths that map nowhere."""
    lines = [f'path = "{own}"', "", "[packages]"]
    if own in PARSER_TESTS.values():
        lines.append(f'sys = "{Path(os.path.relpath(modules.root / PARSER_SYS, app)).as_posix()}"')
    missing: list[str] = []
    seen: set[str] = set()
    queue = [app]
    done: set[Path] = set()
    while queue:
        folder = queue.pop()
        if folder in done:
            continue
        done.add(folder)
        for path in imports_of(folder):
            if path in seen:
                continue
            seen.add(path)
            target = modules.resolve(path, app)
            if target is None:
                missing.append(path)
                continue
            lines.append(f'"{path}" = "{Path(os.path.relpath(target, app)).as_posix()}"')
            queue.append(target)
    (app / "vpm.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return missing


def compile_one(name: str, folder: Path) -> Outcome:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "voedger.cli.vpm", "compile", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    errors = [line.replace(str(folder) + os.sep, "") for line in done.stderr.splitlines() if line.strip()]
    voedger_ok = not any(name == r or name.startswith(r + "/") for r in VOEDGER_REFUSES)
    return Outcome(name, done.returncode == 0, voedger_ok, round(seconds, 2), errors[:5])


def run(source: Path, keep: Path | None) -> tuple[list[Outcome], list[str]]:
    scratch = Path(tempfile.mkdtemp(prefix="voedger-apps-")) if keep is None else keep
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        root = materialize(source, scratch)
        apps, notes = applications(root)
        modules = Modules(root)
        outcomes: list[Outcome] = []
        for name, folder, own in apps:
            missing = write_mapping(folder, own, modules)
            if missing:
                notes.append(f"{name}: no module found for {', '.join(missing)}")
            outcomes.append(compile_one(name, folder))
        return outcomes, notes
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="Voedger's repository: a checkout or its git directory")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    args = parser.parse_args(argv)
    outcomes, notes = run(args.source, args.keep)
    if args.json:
        print(json.dumps({"outcomes": [asdict(o) for o in outcomes], "notes": notes}, indent=1))
    else:
        for o in outcomes:
            verdict = "ok  " if o.ok else "FAIL"
            expected = "" if o.ok == o.voedger_ok else "   <- Voedger says " + ("ok" if o.voedger_ok else "error")
            print(f"{verdict} {o.seconds:5.2f}s  {o.app}{expected}")
            if not o.ok:
                for line in o.errors[:3]:
                    print(f"           {line}")
        for note in notes:
            print(f"note: {note}")
    compiled = sum(o.ok for o in outcomes)
    agree = sum(o.ok == o.voedger_ok for o in outcomes)
    print(
        f"{compiled} of {len(outcomes)} applications compile; "
        f"{agree} of {len(outcomes)} verdicts agree with Voedger's "
        f"({len(VOEDGER_REFUSES)} are refused there on purpose)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
