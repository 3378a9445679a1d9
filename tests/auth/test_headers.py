"""The Authorization header and cookie: every form Voedger accepts, and only our error otherwise."""

from __future__ import annotations

import base64
import contextlib
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voedger.auth import (
    Credentials,
    CredentialsError,
    CredentialsKind,
    basic_header,
    bearer_header,
    credentials_from,
    looks_like_jwt,
    parse_authorization,
    parse_authorization_cookie,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJMb2dpbiI6ImFsaWNlIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def _basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


def _token(c: Credentials | None) -> str:
    assert c is not None and c.kind is CredentialsKind.TOKEN
    return c.token


class TestBearer:
    def test_bearer(self) -> None:
        c = parse_authorization(f"Bearer {JWT}")
        assert c == Credentials(CredentialsKind.TOKEN, "Bearer", token=JWT)

    def test_scheme_is_case_insensitive_and_spaces_are_trimmed(self) -> None:
        assert _token(parse_authorization(f"  bearer   {JWT}  ")) == JWT

    def test_bytes(self) -> None:
        assert _token(parse_authorization(f"Bearer {JWT}".encode())) == JWT

    def test_any_opaque_token_is_passed_on(self) -> None:
        """Validation is the token module's job: a bad token here is a 401 there."""
        assert _token(parse_authorization("Bearer wrong")) == "wrong"

    @pytest.mark.parametrize("value", ["Bearer", "Bearer   ", "Bearer a b", "Bearer a\x00b", "Bearer \u00e9"])
    def test_malformed(self, value: str) -> None:
        with pytest.raises(CredentialsError) as info:
            parse_authorization(value)
        assert info.value.status == 401

    def test_helper(self) -> None:
        assert _token(parse_authorization(bearer_header(JWT))) == JWT


class TestBasic:
    def test_token_in_username(self) -> None:
        c = parse_authorization(_basic(JWT + ":"))
        assert c == Credentials(CredentialsKind.TOKEN, "Basic", token=JWT)

    def test_token_in_password(self) -> None:
        assert _token(parse_authorization(_basic(":" + JWT))) == JWT

    def test_token_split_over_both(self) -> None:
        half = len(JWT) // 2
        assert _token(parse_authorization(_basic(JWT[:half] + ":" + JWT[half:]))) == JWT

    def test_non_jwt_in_one_part_is_a_token_as_in_voedger(self) -> None:
        assert _token(parse_authorization(_basic("opaque:"))) == "opaque"

    def test_login_and_password(self) -> None:
        c = parse_authorization(_basic("alice@example.com:s3cret"))
        assert c == Credentials(CredentialsKind.LOGIN_PASSWORD, "Basic", login="alice@example.com", password="s3cret")

    def test_password_may_hold_colons(self) -> None:
        c = parse_authorization(basic_header("alice", "a:b:c"))
        assert c is not None and (c.kind, c.login, c.password) == (CredentialsKind.LOGIN_PASSWORD, "alice", "a:b:c")

    def test_unpadded_base64(self) -> None:
        raw = base64.b64encode(b"alice:pwd1").decode().rstrip("=")
        c = parse_authorization("Basic " + raw)
        assert c is not None and c.login == "alice"

    def test_repr_hides_secrets(self) -> None:
        c = parse_authorization(_basic("alice:s3cret"))
        assert "s3cret" not in repr(c)
        assert JWT not in repr(parse_authorization(f"Bearer {JWT}"))

    @pytest.mark.parametrize(
        "value",
        [
            "Basic",
            "Basic non-base64-value",
            _basic("some password"),  # no colon
            base64.b64encode(b"some password").decode(),  # no scheme
            _basic(":"),
            _basic("::x"),  # empty login, password with a colon
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),  # not UTF-8
            _basic("a b:"),  # a token with a space
        ],
    )
    def test_malformed(self, value: str) -> None:
        with pytest.raises(CredentialsError):
            parse_authorization(value)


class TestOthers:
    @pytest.mark.parametrize("value", [None, "", "   "])
    def test_absent(self, value: str | None) -> None:
        assert parse_authorization(value) is None

    def test_unsupported_scheme_does_not_echo_the_value(self) -> None:
        with pytest.raises(CredentialsError) as info:
            parse_authorization("Digest username=alice, response=topsecret")
        assert "topsecret" not in info.value.message
        assert "Digest" in info.value.message

    def test_whatever(self) -> None:
        with pytest.raises(CredentialsError):
            parse_authorization(r"whatever w\o Bearer or Basic")

    @pytest.mark.parametrize("value", ["Basic \ud800", "Bearer \ud800", "\ud800", "Bearer%20\ud800", "%41\ud800"])
    def test_lone_surrogates(self, value: str) -> None:
        with pytest.raises(CredentialsError):
            parse_authorization(value)
        with pytest.raises(CredentialsError):
            parse_authorization_cookie(value)

    def test_too_long(self) -> None:
        with pytest.raises(CredentialsError):
            parse_authorization("Bearer " + "a" * 20_000)

    def test_looks_like_jwt(self) -> None:
        assert looks_like_jwt(JWT)
        assert not looks_like_jwt("a.b")
        assert not looks_like_jwt("a.b.c.d")


class TestCookie:
    def test_escaped_bearer(self) -> None:
        c = parse_authorization_cookie(quote(f"Bearer {JWT}"))
        assert c == Credentials(CredentialsKind.TOKEN, "Bearer", token=JWT, from_cookie=True)

    def test_plus_is_a_space_as_in_go_query_unescape(self) -> None:
        assert _token(parse_authorization_cookie(f"Bearer+{JWT}")) == JWT

    def test_bare_jwt(self) -> None:
        assert _token(parse_authorization_cookie(JWT)) == JWT

    def test_bad_escape(self) -> None:
        with pytest.raises(CredentialsError):
            parse_authorization_cookie("Bearer%2")

    def test_absent(self) -> None:
        assert parse_authorization_cookie(None) is None
        assert parse_authorization_cookie("") is None


class TestRequest:
    def test_header_wins_over_cookie(self) -> None:
        c = credentials_from({"authorization": f"Bearer {JWT}"}, {"Authorization": "Bearer%20other"})
        assert _token(c) == JWT and c is not None and not c.from_cookie

    def test_cookie_when_no_header(self) -> None:
        c = credentials_from({}, {"Authorization": f"Bearer%20{JWT}"})
        assert _token(c) == JWT and c is not None and c.from_cookie

    def test_nothing(self) -> None:
        assert credentials_from({"Accept": "*/*"}, {}) is None
        assert credentials_from({"Authorization": ""}) is None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_header_text(value: str) -> None:
    with contextlib.suppress(CredentialsError):
        parse_authorization(value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_header_bytes(value: bytes) -> None:
    with contextlib.suppress(CredentialsError):
        parse_authorization(value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["Basic ", "Bearer ", "basic  ", ""]), st.binary(max_size=120))
def test_fuzz_basic_payloads(scheme: str, raw: bytes) -> None:
    with contextlib.suppress(CredentialsError):
        parse_authorization(scheme + base64.b64encode(raw).decode())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_cookie(value: str) -> None:
    with contextlib.suppress(CredentialsError):
        parse_authorization_cookie(value)
