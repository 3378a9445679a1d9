"""Property: whatever the input, the compiler either succeeds or raises VSQLError; it never crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vsql.helpers import FIXTURES, sys_package
from voedger.vsql import VSQLError, analyse, ast, parse_string

BAKERY = FIXTURES / "apps" / "bakery"
SOURCES = {
    "bakery": (BAKERY / "app.vsql").read_text(),
    "common": (BAKERY / "common" / "common.vsql").read_text(),
    "stock": (BAKERY / "stock" / "stock.vsql").read_text(),
}
CLINIC = (FIXTURES / "apps" / "clinic" / "clinic.vsql").read_text()

EXTRA_TOKENS = """
( ) , ; . = < > <> != <= >= + - * / % ' " -- /* */
WORKSPACE TABLE TYPE VIEW ROLE TAG GRANT REVOKE RATE LIMIT JOB QUERY COMMAND PROJECTOR
ABSTRACT ALTERABLE ALTER POOL OF INHERITS DESCRIPTOR USE IMPORT SCHEMA AS APPLICATION
NOT NULL IS IN BETWEEN AND OR TRUE FALSE CHECK UNIQUE UNIQUEFIELD CONSTRAINT ref record
PRIMARY KEY ON ALL EACH WITH TAG TO FROM EXECUTE SELECT INSERT UPDATE ACTIVATE DEACTIVATE
EXTENSION ENGINE BUILTIN WASM STORAGE SCOPE COMMANDS QUERIES PROJECTORS JOBS ENTITY RECORD
STATE INTENTS RETURNS UNLOGGED SYNC AFTER CRON PARAM INCLUDING ERRORS FUNCTION TEMPLATE SOURCE
PER SECOND MINUTES HOUR DAY YEAR APP PARTITION SUBJECT IP DECLARE DEFAULT VERIFIABLE
varchar(70000) int32 blob bytes qname any void 0 -1 99999999999 1.5 'x' sys sys.CDoc
"""
VOCABULARY = sorted(
    {*(word for text in (*SOURCES.values(), CLINIC, EXTRA_TOKENS) for word in text.split()), "'@every 1s'"}
)


def compile_texts(texts: dict[str, str]) -> None:
    """Parse and analyse packages given as texts; the main package is the first."""
    pkgs: list[ast.Package] = []
    for i, (name, text) in enumerate(texts.items()):
        file = parse_string(text, f"{name}.vsql")
        pkgs.append(ast.Package(name=name, path="" if i == 0 else name, files=(file,)))
    analyse([*pkgs, sys_package()])


def must_not_crash(texts: dict[str, str]) -> None:
    try:
        compile_texts(texts)
    except VSQLError as e:
        assert e.diagnostics, "a VSQLError carries at least one diagnostic"
        for d in e.diagnostics:
            assert d.message
            if not d.file:  # a problem of the application as a whole: no position, as in Voedger
                assert (d.line, d.col) == (0, 0) and str(d) == d.message
                continue
            assert d.line >= 1 and d.col >= 1
            assert str(d).startswith(f"{d.file}:{d.line}:{d.col}: ")


@st.composite
def mutated(draw: st.DrawFn, source: str) -> str:
    text = source
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not text:
            break
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "swap"]))
        i = draw(st.integers(min_value=0, max_value=len(text) - 1))
        j = min(len(text), i + draw(st.integers(min_value=1, max_value=80)))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + " " + draw(st.sampled_from(VOCABULARY)) + " " + text[i:]
        else:
            words = text.split(" ")
            k = draw(st.integers(min_value=0, max_value=len(words) - 1))
            if kind == "replace":
                words[k] = draw(st.sampled_from(VOCABULARY))
            else:
                m = draw(st.integers(min_value=0, max_value=len(words) - 1))
                words[k], words[m] = words[m], words[k]
            text = " ".join(words)
    return text


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text())
def test_random_text(text: str) -> None:
    must_not_crash({"main": text})


@FAST
@given(st.lists(st.sampled_from(VOCABULARY), max_size=60))
def test_random_token_soup(words: list[str]) -> None:
    must_not_crash({"main": " ".join(words)})


@FAST
@given(st.sampled_from(sorted(SOURCES)), st.data())
def test_mutated_multi_package_application(target: str, data: st.DataObject) -> None:
    texts = dict(SOURCES)
    texts[target] = data.draw(mutated(SOURCES[target]))
    must_not_crash(texts)


@FAST
@given(mutated(CLINIC))
def test_mutated_single_package_application(text: str) -> None:
    must_not_crash({"clinic": text})


def test_the_unmutated_sources_compile() -> None:
    compile_texts(SOURCES)
    compile_texts({"clinic": CLINIC})


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = 5000
    text = "APPLICATION a(); WORKSPACE W (TABLE T INHERITS sys.CDoc (A int, CHECK (" + "(" * depth + "A" + ")" * depth
    must_not_crash({"main": text + ")););"})
