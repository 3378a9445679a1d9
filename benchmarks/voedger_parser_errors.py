"""How many of the errors Voedger's parser tests expect our VSQL compiler gives, text and position.

    python -m benchmarks.voedger_parser_errors SOURCE [--verbose] [--json]

SOURCE is a checkout of Voedger's repository or its git directory (files are read from HEAD). The
script reads ``pkg/parser/impl_test.go`` and follows each test function the way Go would run it, far
enough to know, at each assertion on an error, which schema texts were parsed under which file
names, which packages (by import path) were built of them, and which of those were given to the
application: the calls ``ParseFile``, ``BuildPackageSchema``, ``BuildAppSchema``, the test helpers
(``AppSchemaError``, ``AppSchema``, ``PkgSchema``, ``FileSchema``, ``buildPackage`` and
``Test_AppSchemaErrors``'s ``f``), and the assertions ``EqualError`` (the whole text must match) and
``ErrorContains`` (the text must contain the expectation). ``getSysPackageAST()`` is Voedger's
``pkg/parser/sql_example_syspkg``, parsed as ``sys``. It also takes ``cmd/vpm``'s compile-error test
(a syntax error whose position Voedger checks).

Each case is run through our parser and analyser (`voedger.vsql`) and the error text, every line
with its ``file:line:col``, is compared with Voedger's. Assertions on errors of ``BuildAppDefs``
(Voedger's second stage) are not taken: they test the application builder, not the compiler.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from voedger.vsql import VSQLError, analyse, ast, parse_string

IMPL_TEST = "pkg/parser/impl_test.go"
SYS_FOLDER = "pkg/parser/sql_example_syspkg"
VPM_ERR_APP = "cmd/vpm/testdata/myapperr/mypkg1/schema1.vsql"
VPM_ERR_POSITION = "schema1.vsql:6:25"
"""cmd/vpm's TestCompileErrors: compiling mypkg1 must report an error at this position."""

GO_CONSTANTS = {"appdef.MaxFieldLength": "65535", "appdef.DefaultFieldMaxLength": "255"}
"""The Go constants the tests put into expected texts with fmt.Sprintf."""


@dataclass(frozen=True)
class SchemaFile:
    name: str
    text: str


@dataclass(frozen=True)
class Pkg:
    path: str
    files: tuple[SchemaFile, ...]


SYS = Pkg("sys", ())
"""Stands for getSysPackageAST(); its files are read from the source when a case is run."""


@dataclass
class Case:
    test: str
    line: int
    stage: str  # "parse" (one file), "package" (BuildPackageSchema) or "app" (BuildAppSchema)
    packages: list[Pkg]
    expected: str
    exact: bool  # EqualError, else ErrorContains
    got: str = ""
    match: bool = False
    before: dict[str, object] = field(default_factory=dict)


# --- a small Go reader ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tok:
    kind: str  # "str", "id", "nl", "p" (punctuation)
    value: str
    line: int


_GO_TOKEN = re.compile(
    r"(?P<raw>`[^`]*`)|(?P<str>\"(?:\\.|[^\"\\\n])*\")|(?P<chr>'(?:\\.|[^'\\\n])*')"
    r"|(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<nl>\n)|(?P<ws>[ \t\r]+)"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(?P<num>[0-9]+)|(?P<op>:=|\.\.\.|[^\sA-Za-z_])",
    re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}


def _unquote(lit: str) -> str:
    if lit.startswith("`"):
        return lit[1:-1].replace("\r", "")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), lit[1:-1])


def go_tokens(source: str) -> list[Tok]:
    toks: list[Tok] = []
    line = 1
    for m in _GO_TOKEN.finditer(source):
        kind, text = m.lastgroup or "", m.group()
        if kind in ("raw", "str"):
            toks.append(Tok("str", _unquote(text), line))
        elif kind == "nl":
            toks.append(Tok("nl", "", line))
        elif kind == "id":
            toks.append(Tok("id", text, line))
        elif kind in ("op", "chr", "num"):
            toks.append(Tok("p", text, line))
        line += text.count("\n")
    return toks


def _split_args(toks: list[Tok], start: int) -> tuple[list[list[Tok]], int]:
    """The arguments of the call whose "(" is at `start`, and the index after its ")"."""
    args: list[list[Tok]] = [[]]
    depth = 0
    i = start
    while i < len(toks):
        t = toks[i]
        if t.kind == "p" and t.value in "([{":
            depth += 1
            if depth > 1:
                args[-1].append(t)
        elif t.kind == "p" and t.value in ")]}":
            depth -= 1
            if depth == 0:
                return [a for a in args if a], i + 1
            args[-1].append(t)
        elif t.kind == "p" and t.value == "," and depth == 1:
            args.append([])
        elif t.kind != "nl":
            args[-1].append(t)
        i += 1
    return [a for a in args if a], i


class Unsupported(Exception):
    """An expression this reader does not evaluate (the case is left out)."""


Value = str | list[object] | SchemaFile | Pkg | tuple[str, list[Pkg]] | None


class TestReader:
    """Walks one test function's tokens, keeping the variables it needs, and records the cases."""

    def __init__(self, test: str, toks: list[Tok], cases: list[Case]) -> None:
        self.test = test
        self.toks = toks
        self.cases = cases
        self.env: dict[str, Value] = {}
        self.err: tuple[str, list[Pkg]] | None = None
        self.last_app: list[Pkg] | None = None
        self.skipped = 0

    # expressions
    def eval(self, toks: list[Tok]) -> Value:
        if not toks:
            raise Unsupported("empty")
        parts: list[list[Tok]] = [[]]
        depth = 0
        for t in toks:  # string concatenation with "+"
            if t.kind == "p" and t.value in "([{":
                depth += 1
            elif t.kind == "p" and t.value in ")]}":
                depth -= 1
            if t.kind == "p" and t.value == "+" and depth == 0:
                parts.append([])
            else:
                parts[-1].append(t)
        if len(parts) > 1:
            values = [self.eval(p) for p in parts]
            if not all(isinstance(v, str) for v in values):
                raise Unsupported("+")
            if all(str(v).isdigit() for v in values) and not any(p[0].kind == "str" for p in parts):
                return str(sum(int(str(v)) for v in values))  # numbers: uint32(appdef.MaxFieldLength)+1
            return "".join(str(v) for v in values)
        first = toks[0]
        if len(toks) == 1:
            if first.kind == "str":
                return first.value
            if first.kind == "p" and first.value.isdigit():  # a number
                return first.value
            if first.kind == "id":
                if first.value in GO_CONSTANTS:
                    return GO_CONSTANTS[first.value]
                if first.value in self.env:
                    return self.env[first.value]
            raise Unsupported(first.value)
        if first.kind == "p" and first.value == "[":  # []T{...}
            brace = next(i for i, t in enumerate(toks) if t.kind == "p" and t.value == "{")
            args, _ = _split_args(toks, brace)
            return [self.eval(a) for a in args]
        if first.kind == "id" and len(toks) > 1 and toks[1].value == "(":
            args, end = _split_args(toks, 1)
            if end != len(toks):
                raise Unsupported("call followed by more")
            return self.call(first.value, args, first.line, assigned=False)
        raise Unsupported(" ".join(t.value for t in toks))

    def strings(self, toks: list[Tok]) -> str:
        v = self.eval(toks)
        if not isinstance(v, str):
            raise Unsupported("not a string")
        return v

    def pkgs(self, toks: list[Tok]) -> list[Pkg]:
        v = self.eval(toks)
        if not isinstance(v, list) or not all(isinstance(p, Pkg) for p in v):
            raise Unsupported("not packages")
        return [p for p in v if isinstance(p, Pkg)]

    # calls
    def call(self, name: str, args: list[list[Tok]], line: int, assigned: bool) -> Value:
        short = name.rsplit(".", 1)[-1] if name.startswith("require.") else name
        if name == "getSysPackageAST":
            return SYS
        if name == "strings.Join":
            items = self.eval(args[0])
            if not isinstance(items, list):
                raise Unsupported("Join")
            return self.strings(args[1]).join(str(i) for i in items)
        if name in ("uint32", "int"):  # a conversion of a number
            return self.strings(args[0])
        if name == "fmt.Sprintf":
            text = self.strings(args[0])
            for a in args[1:]:
                text = re.sub(r"%[dsv]", str(self.eval(a)).replace("\\", r"\\"), text, count=1)
            return text
        if name == "ParseFile":
            f = SchemaFile(self.strings(args[0]), self.strings(args[1]))
            self.err = ("parse", [Pkg("", (f,))])
            return f
        if short == "FileSchema":
            return SchemaFile(self.strings(args[0]), self.strings(args[1]))
        if name == "BuildPackageSchema":
            files = self.eval(args[1])
            if not isinstance(files, list) or not all(isinstance(f, SchemaFile) for f in files):
                raise Unsupported("files")
            p = Pkg(self.strings(args[0]), tuple(f for f in files if isinstance(f, SchemaFile)))
            self.err = ("package", [p])
            return p
        if short == "PkgSchema":
            return Pkg(self.strings(args[1]), (SchemaFile(self.strings(args[0]), self.strings(args[2])),))
        if name == "buildPackage":
            return Pkg("github.com/voedger/voedger/app1", (SchemaFile("source.vsql", self.strings(args[0])),))
        if name == "BuildAppSchema":
            self.last_app = self.pkgs(args[0])
            self.err = ("app", self.last_app)
            return None
        if short == "AppSchema":
            self.last_app = [SYS, _company_pkg(self.strings(args[0]))]
            self.err = ("app", self.last_app)
            return None
        if short == "AppSchemaError":
            expected = "\n".join(self.strings(a) for a in args[1:])
            self.add("app", [SYS, _company_pkg(self.strings(args[0]))], expected, True, line)
            return None
        if name == "f" and self.test == "Test_AppSchemaErrors":
            expected = "\n".join(self.strings(a) for a in args[1:])
            main = Pkg("github.com/untillpro/airsbp3/pkg4", (SchemaFile("file2.vsql", self.strings(args[0])),))
            others = [self.env.get("pkg2"), self.env.get("pkg3")]
            self.add("app", [main, *[p for p in others if isinstance(p, Pkg)]], expected, True, line)
            return None
        if short in ("EqualError", "ErrorContains") and args and [t.value for t in args[0]] == ["err"]:
            if self.err is None:
                raise Unsupported("no error source")
            self.add(self.err[0], self.err[1], self.strings(args[1]), short == "EqualError", line)
            return None
        if name == "BuildAppDefs":  # our analyser makes the checks of Voedger's builder too
            if self.last_app is None:
                raise Unsupported("BuildAppDefs without an application")
            self.err = ("app", self.last_app)
            return None
        if short == "Contains" and [t.value for t in args[0]] == ["err.Error", "(", ")"]:
            if self.err is None:
                raise Unsupported("no error source")
            self.add(self.err[0], self.err[1], self.strings(args[1]), False, line)
            return None
        raise Unsupported(name)

    def add(self, stage: str, packages: list[Pkg], expected: str, exact: bool, line: int) -> None:
        self.cases.append(Case(self.test, line, stage, packages, expected, exact))

    # statements
    def run(self) -> None:
        toks = self.toks
        i = 0
        stmt_start = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "nl" or (t.kind == "p" and t.value in ";{}"):
                stmt_start = i + 1
                i += 1
                continue
            if t.kind == "id" and i + 1 < len(toks) and toks[i + 1].value == "(" and _interesting(t.value):
                args, end = _split_args(toks, i + 1)
                lhs = [x for x in toks[stmt_start:i] if x.kind != "nl"]
                try:
                    value = self.call(t.value, args, t.line, assigned=bool(lhs))
                    self.assign(lhs, value)
                except (Unsupported, StopIteration, IndexError):
                    if t.value.endswith(("EqualError", "ErrorContains", "AppSchemaError")) or t.value == "f":
                        self.skipped += 1
                i = end
                continue
            if i == stmt_start and t.kind == "id" and i + 1 < len(toks) and toks[i + 1].value in (":=", "="):
                # a plain variable: name := []string{...}
                j = i + 2
                depth = 0
                while j < len(toks) and not (depth == 0 and toks[j].kind == "nl"):
                    if toks[j].kind == "p" and toks[j].value in "([{":
                        depth += 1
                    elif toks[j].kind == "p" and toks[j].value in ")]}":
                        depth -= 1
                    j += 1
                try:
                    self.env[t.value] = self.eval(toks[i + 2 : j])
                except (Unsupported, StopIteration, IndexError):
                    self.env.pop(t.value, None)
                    i += 1
                    continue
                i = j
                continue
            i += 1

    def assign(self, lhs: list[Tok], value: Value) -> None:
        names = [x.value for x in lhs if x.kind == "id"]
        if names and names[0] not in ("err", "_"):
            self.env[names[0]] = value


_CALLS = {
    "ParseFile",
    "BuildPackageSchema",
    "BuildAppSchema",
    "buildPackage",
    "BuildAppDefs",
    "f",
}


def _interesting(name: str) -> bool:
    return name in _CALLS or (
        name.startswith("require.")
        and name.rsplit(".", 1)[-1]
        in {"AppSchemaError", "AppSchema", "PkgSchema", "FileSchema", "EqualError", "ErrorContains", "Contains"}
    )


def _company_pkg(sql: str) -> Pkg:
    return Pkg("github.com/company/pkg", (SchemaFile("file.vsql", sql),))


def _functions(toks: list[Tok]) -> Iterator[tuple[str, list[Tok]]]:
    i = 0
    while i < len(toks):
        if toks[i].value == "func" and i + 1 < len(toks) and toks[i + 1].kind == "id":
            name = toks[i + 1].value
            j = i + 2
            while j < len(toks) and not (toks[j].kind == "p" and toks[j].value == "{"):
                j += 1
            depth, k = 0, j
            while k < len(toks):
                if toks[k].kind == "p" and toks[k].value == "{":
                    depth += 1
                elif toks[k].kind == "p" and toks[k].value == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            yield name, toks[j + 1 : k]
            i = k
        i += 1


def extract_cases(go_source: str) -> tuple[list[Case], int]:
    """The error-expecting cases of a Voedger parser test file, and how many assertions were left out."""
    cases: list[Case] = []
    skipped = 0
    for name, body in _functions(go_tokens(go_source)):
        if not name.startswith("Test"):
            continue
        reader = TestReader(name, body, cases)
        reader.run()
        skipped += reader.skipped
    return cases, skipped


# --- running a case through our compiler ------------------------------------------------------------


def _package(pkg: Pkg, sys_files: tuple[SchemaFile, ...]) -> ast.Package:
    if pkg is SYS or pkg.path == "sys":
        return ast.Package(name="sys", path="sys", files=tuple(parse_string(f.text, f.name) for f in sys_files))
    files = tuple(parse_string(f.text, f.name) for f in pkg.files)
    return ast.Package(name=pkg.path.rstrip("/").rsplit("/", 1)[-1], path=pkg.path, files=files)


def our_errors(case: Case, sys_files: tuple[SchemaFile, ...]) -> str:
    """Our compiler's error text for a case ("" when it finds none)."""
    try:
        if case.stage == "parse":
            for f in case.packages[0].files:
                parse_string(f.text, f.name)
            return ""
        packages = [_package(p, sys_files) for p in case.packages]
        if case.stage == "package":  # Voedger's package stage checks the package's own names only
            packages = [*packages, _package(SYS, sys_files)]
        analyse(packages)
    except VSQLError as exc:
        lines = [str(d) for d in exc.diagnostics]
        if case.stage == "package":  # only the duplicate names: the package stage resolves no name
            lines = [x for x in lines if ": redefinition of " in x]
        return "\n".join(lines)
    except Exception as exc:  # a crash is a mismatch to report, not the end of the run
        return f"CRASH {type(exc).__name__}: {exc}"
    return ""


def judge(case: Case, sys_files: tuple[SchemaFile, ...]) -> Case:
    case.got = our_errors(case, sys_files)
    case.match = case.got == case.expected if case.exact else bool(case.got) and case.expected in case.got
    return case


# --- reading the source -----------------------------------------------------------------------------


def _reader(source: Path) -> tuple[Callable[[str], str], Callable[[str], list[str]]]:
    if (source / "HEAD").is_file() and (source / "objects").is_dir():
        git = ["git", f"--git-dir={source}"]

        def read(path: str) -> str:
            return subprocess.run([*git, "show", f"HEAD:{path}"], check=True, capture_output=True, text=True).stdout

        def listing(folder: str) -> list[str]:
            out = subprocess.run(
                [*git, "ls-tree", "--name-only", "HEAD", folder + "/"], check=True, capture_output=True, text=True
            ).stdout
            return [line.rsplit("/", 1)[-1] for line in out.splitlines()]

        return read, listing
    return (lambda p: (source / p).read_text(encoding="utf-8")), (lambda f: [x.name for x in (source / f).iterdir()])


def collect(source: Path) -> tuple[list[Case], int, tuple[SchemaFile, ...]]:
    read, listing = _reader(source)
    cases, skipped = extract_cases(read(IMPL_TEST))
    sys_files = tuple(
        SchemaFile(n, read(f"{SYS_FOLDER}/{n}")) for n in sorted(listing(SYS_FOLDER)) if n.endswith((".vsql", ".sql"))
    )
    vpm = SchemaFile("schema1.vsql", read(VPM_ERR_APP))
    cases.append(Case("cmd/vpm TestCompileErrors", 0, "parse", [Pkg("mypkg1", (vpm,))], VPM_ERR_POSITION, False))
    return cases, skipped, sys_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="Voedger's repository: a checkout or its git directory")
    parser.add_argument("--verbose", action="store_true", help="print every case that does not match")
    parser.add_argument("--json", action="store_true", help="print the cases as JSON")
    args = parser.parse_args(argv)
    cases, skipped, sys_files = collect(args.source)
    for case in cases:
        judge(case, sys_files)
    matched = sum(c.match for c in cases)
    if args.json:
        json.dump([asdict(c) for c in cases], sys.stdout, indent=1)
        print()
    elif args.verbose:
        for c in cases:
            if not c.match:
                print(f"--- {c.test} (impl_test.go:{c.line}, {c.stage}, {'equal' if c.exact else 'contains'})")
                print("voedger:\n  " + c.expected.replace("\n", "\n  "))
                print("ours:\n  " + (c.got or "(no error)").replace("\n", "\n  "))
    parse_cases = [c for c in cases if c.stage == "parse"]
    print(
        f"{matched} of {len(cases)} expected errors match exactly (text and file:line:col); "
        f"syntax: {sum(c.match for c in parse_cases)} of {len(parse_cases)}; "
        f"{skipped} assertions not read"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
