"""Principal and system tokens: claims, round trips, expiry, and every way a token is refused."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from voedger.appdef import QName
from voedger.auth import (
    DEFAULT_PRINCIPAL_TOKEN_TTL,
    PRINCIPAL_AUDIENCE,
    AppTokens,
    PrincipalPayload,
    RoleInWorkspace,
    SubjectKind,
    TokenError,
    TokenErrorKind,
    Tokens,
    generate_secret,
    principal_token_ttl,
)
from voedger.auth.keys import SigningKey
from voedger.auth.keystore import LEGACY_HMAC_WINDOW, ClusterKeys
from voedger.clock import ManualClock
from voedger.syserror import SysError

from .conftest import APP

ALICE = PrincipalPayload(
    login="alice@example.com",
    alias="alice",
    subject_kind=SubjectKind.USER,
    profile_wsid=140_737_488_486_400,
    roles=(RoleInWorkspace(140_737_488_486_401, QName("staff", "Manager")),),
    global_roles=(QName("sys", "ClusterAdmin"),),
)


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def _sign(tokens: Tokens, claims: dict[str, object]) -> str:
    """``claims`` signed as ``tokens`` signs (its cluster's current key), whatever they say."""
    return tokens.keys.signing.sign(claims)


def _refused(kind: TokenErrorKind, tokens: Tokens, token: str, app: str = APP) -> TokenError:
    with pytest.raises(TokenError) as info:
        tokens.validate(app, token)
    assert info.value.kind is kind, info.value
    assert info.value.status == 401
    return info.value


class TestIssue:
    def test_round_trip(self, tokens: Tokens) -> None:
        info = tokens.validate(APP, tokens.issue(APP, ALICE))
        assert info.payload == ALICE
        assert info.app == APP
        assert info.duration == DEFAULT_PRINCIPAL_TOKEN_TTL

    def test_device_round_trip(self, tokens: Tokens) -> None:
        device = PrincipalPayload(login="dev-1", subject_kind=SubjectKind.DEVICE, profile_wsid=140_737_488_486_500)
        assert tokens.validate(APP, tokens.issue(APP, device)).payload == device

    def test_claims_are_voedgers(self, tokens: Tokens, clock: ManualClock) -> None:
        clock.advance(0.25)
        c = _claims(tokens.issue(APP, ALICE, timedelta(hours=2)))
        assert c["iat"] == 1_700_000_000
        assert c["exp"] == 1_700_000_000 + 7200
        assert c["aud"] == PRINCIPAL_AUDIENCE == "payloads.PrincipalPayload"
        assert c["Duration"] == 7200 * 10**9  # Go's time.Duration: nanoseconds
        assert c["AppQName"] == APP
        assert c["IssuedAt"] == "2023-11-14T22:13:20.25Z"
        assert c["Login"] == "alice@example.com"
        assert c["Alias"] == "alice"
        assert c["SubjectKind"] == 1
        assert c["ProfileWSID"] == 140_737_488_486_400
        assert c["Roles"] == [{"WSID": 140_737_488_486_401, "QName": "staff.Manager"}]
        assert c["GlobalRoles"] == ["sys.ClusterAdmin"]
        assert c["IsAPIToken"] is False

    def test_empty_lists_are_null_as_go_marshals_them(self, tokens: Tokens) -> None:
        c = _claims(tokens.issue(APP, PrincipalPayload(login="bob", profile_wsid=1)))
        assert c["Roles"] is None
        assert c["GlobalRoles"] is None

    def test_header_is_eddsa_with_the_key_id(self, tokens: Tokens) -> None:
        header = jwt.get_unverified_header(tokens.issue(APP, ALICE))
        assert header["alg"] == "EdDSA"
        assert header["kid"] == tokens.keys.signing.kid
        assert _claims(tokens.issue(APP, ALICE))["IssuerClusterID"] == 1

    def test_default_ttl_is_one_hour(self, tokens: Tokens) -> None:
        c = _claims(tokens.issue(APP, ALICE))
        assert c["exp"] == c["iat"] + 3600  # type: ignore[operator]

    @pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), timedelta(hours=168, seconds=1)])
    def test_ttl_bounds(self, tokens: Tokens, ttl: timedelta) -> None:
        with pytest.raises(ValueError):
            tokens.issue(APP, ALICE, ttl)

    def test_max_ttl_is_a_week(self, tokens: Tokens) -> None:
        info = tokens.validate(APP, tokens.issue(APP, ALICE, timedelta(hours=168)))
        assert info.expires_at - info.issued_at == 168 * 3600

    def test_app_name_must_be_owner_slash_app(self, tokens: Tokens) -> None:
        with pytest.raises(ValueError):
            tokens.issue("restaurant", ALICE)

    def test_system_token(self, tokens: Tokens) -> None:
        token = tokens.issue_system("sys/registry")
        info = tokens.validate("sys/registry", token)
        assert info.payload.login == "system"
        assert info.payload.profile_wsid == 0
        assert info.payload.is_system
        assert info.duration == timedelta(minutes=10)
        assert info.expires_at - info.issued_at == 600

    def test_refresh_keeps_payload_and_ttl(self, tokens: Tokens, clock: ManualClock) -> None:
        old = tokens.issue(APP, ALICE, timedelta(hours=5))
        clock.advance(3600)
        new = tokens.validate(APP, tokens.refresh(APP, old))
        assert new.payload == ALICE
        assert new.duration == timedelta(hours=5)
        assert new.issued_at == 1_700_003_600

    def test_app_tokens(self, tokens: Tokens) -> None:
        app = tokens.for_app(APP)
        assert isinstance(app, AppTokens)
        assert app.validate(app.issue(ALICE)).payload == ALICE
        assert app.validate(app.issue_system()).payload.is_system
        assert app.validate(app.refresh(app.issue(ALICE))).payload == ALICE
        with pytest.raises(ValueError):
            tokens.for_app("nope")

    def test_api_token(self, tokens: Tokens) -> None:
        token = tokens.issue_api_token(APP, ALICE, [QName("staff", "Waiter")], 555)
        payload = tokens.validate(APP, token).payload
        assert payload.is_api_token
        assert payload.roles[-1] == RoleInWorkspace(555, QName("staff", "Waiter"))
        with pytest.raises(ValueError):
            tokens.issue_api_token(APP, ALICE, [QName("sys", "WorkspaceOwner")], 555)
        with pytest.raises(ValueError):
            tokens.issue_api_token(APP, ALICE, [QName("staff", "Waiter")], 0)

    def test_other_claims(self, tokens: Tokens) -> None:
        aud = "payloads.VerifiedValuePayload"
        token = tokens.issue_claims(APP, aud, {"Entity": "app.T", "exp": 1}, timedelta(minutes=1))
        claims = tokens.validate_claims(APP, aud, token)
        assert claims["Entity"] == "app.T"
        assert claims["exp"] == 1_700_000_060  # reserved claims cannot be overridden
        _refused(TokenErrorKind.WRONG_AUDIENCE, tokens, token)


class TestExpiry:
    def test_valid_until_exp(self, tokens: Tokens, clock: ManualClock) -> None:
        token = tokens.issue(APP, ALICE)
        clock.advance(3600)
        assert tokens.validate(APP, token).payload == ALICE

    def test_expired_after_exp(self, tokens: Tokens, clock: ManualClock) -> None:
        token = tokens.issue(APP, ALICE)
        clock.advance(3601)
        err = _refused(TokenErrorKind.EXPIRED, tokens, token)
        assert err.message == "token expired"

    def test_refresh_of_expired_token_fails(self, tokens: Tokens, clock: ManualClock) -> None:
        token = tokens.issue(APP, ALICE)
        clock.advance(7200)
        with pytest.raises(TokenError):
            tokens.refresh(APP, token)

    def test_token_from_the_future_is_accepted(self, secret: bytes) -> None:
        """As in Voedger (iat is not checked): nodes' clocks may differ a little."""
        node1 = Tokens(secret, ManualClock(2_000_000_000))
        node2 = Tokens(secret, ManualClock(1_999_999_000), node1.keys)
        assert node2.validate(APP, node1.issue(APP, ALICE)).payload == ALICE


class TestRefused:
    def test_wrong_app(self, tokens: Tokens) -> None:
        token = tokens.issue("untill/other", ALICE)
        err = _refused(TokenErrorKind.WRONG_APP, tokens, token)
        assert err.message == "token issued for another application"

    def test_other_secret(self, tokens: Tokens, clock: ManualClock) -> None:
        forged = Tokens(generate_secret(), clock).issue(APP, ALICE)
        _refused(TokenErrorKind.BAD_SIGNATURE, tokens, forged)

    def test_tampered_signature(self, tokens: Tokens) -> None:
        token = tokens.issue(APP, ALICE)
        head, payload, sig = token.split(".")
        flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        _refused(TokenErrorKind.BAD_SIGNATURE, tokens, f"{head}.{payload}.{flipped}")

    def test_tampered_payload(self, tokens: Tokens) -> None:
        token = tokens.issue(APP, ALICE)
        head, _, sig = token.split(".")
        claims = _claims(token)
        claims["ProfileWSID"] = 1
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        _refused(TokenErrorKind.BAD_SIGNATURE, tokens, f"{head}.{forged}.{sig}")

    @pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "Bearer x.y.z", "é.é.é"])
    def test_malformed(self, tokens: Tokens, token: str) -> None:
        _refused(TokenErrorKind.MALFORMED, tokens, token)

    def test_unsigned_token(self, tokens: Tokens) -> None:
        claims = _claims(tokens.issue(APP, ALICE))
        unsigned = jwt.encode(claims, None, algorithm="none")
        _refused(TokenErrorKind.MALFORMED, tokens, unsigned)

    def test_hmac_is_refused_without_a_legacy_window(self, tokens: Tokens, secret: bytes) -> None:
        claims = _claims(tokens.issue(APP, ALICE))
        err = _refused(TokenErrorKind.MALFORMED, tokens, jwt.encode(claims, secret, algorithm="HS256"))
        assert err.message == "token is not signed with an accepted algorithm"

    def test_missing_claims(self, tokens: Tokens) -> None:
        claims = _claims(tokens.issue(APP, ALICE))
        del claims["exp"]
        _refused(TokenErrorKind.INVALID_PAYLOAD, tokens, _sign(tokens, claims))

    @pytest.mark.parametrize(
        ("claim", "value"),
        [
            ("ProfileWSID", "1"),
            ("ProfileWSID", -1),
            ("SubjectKind", True),
            ("Login", 5),
            ("GlobalRoles", "sys.ClusterAdmin"),
            ("GlobalRoles", ["not a qname"]),
            ("Roles", [{"WSID": 1, "QName": 7}]),
            ("Roles", ["x"]),
            ("IsAPIToken", "yes"),
            ("Duration", "1h"),
            ("AppQName", None),
            ("exp", "soon"),
        ],
    )
    def test_invalid_payload(self, tokens: Tokens, claim: str, value: object) -> None:
        claims = _claims(tokens.issue(APP, ALICE))
        claims[claim] = value
        token = _sign(tokens, claims)
        with pytest.raises(TokenError) as info:
            tokens.validate(APP, token)
        assert info.value.kind is TokenErrorKind.INVALID_PAYLOAD

    @pytest.mark.parametrize("issuer", [None, 2, "1", True])
    def test_issuer_claim_must_name_the_signing_keys_cluster(self, tokens: Tokens, issuer: object) -> None:
        claims = _claims(tokens.issue(APP, ALICE))
        if issuer is None:
            del claims["IssuerClusterID"]
        else:
            claims["IssuerClusterID"] = issuer
        _refused(TokenErrorKind.WRONG_ISSUER, tokens, _sign(tokens, claims))

    def test_unknown_key_id(self, tokens: Tokens) -> None:
        claims = _claims(tokens.issue(APP, ALICE))
        stranger = SigningKey.generate(1)
        for header in ({"kid": stranger.kid}, {}):
            token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
            err = _refused(TokenErrorKind.BAD_SIGNATURE, tokens, token)
            assert err.message == "token is signed by an unknown key"
        _, payload, sig = tokens.issue(APP, ALICE).split(".")
        odd = base64.urlsafe_b64encode(b'{"alg":"EdDSA","kid":5}').decode().rstrip("=")
        _refused(TokenErrorKind.MALFORMED, tokens, f"{odd}.{payload}.{sig}")

    def test_key_id_of_the_ring_with_another_key(self, tokens: Tokens) -> None:
        """A forger who puts our key ID in the header of a token signed by his key."""
        claims = _claims(tokens.issue(APP, ALICE))
        header = {"kid": tokens.keys.signing.kid}
        token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
        _refused(TokenErrorKind.BAD_SIGNATURE, tokens, token)


class TestLegacyHMAC:
    """HS256 tokens of before the upgrade: accepted on the main cluster for 168 h after its keys
    were made, if they were issued before that; then refused."""

    @pytest.fixture
    def legacy(self, secret: bytes, clock: ManualClock) -> Tokens:
        clock.advance(1)  # the upgrade: a second after the Go-issued token below
        keys = ClusterKeys.ephemeral(1, clock, hmac_until=clock.now() + LEGACY_HMAC_WINDOW)
        return Tokens(secret, clock, keys)

    def _old(self, secret: bytes, clock: ManualClock, alg: str = "HS256", *, age: int = 60, ttl: int = 168) -> str:
        now = int(clock.now())
        claims = ALICE.to_claims() | {
            "iat": now - age,
            "exp": now - age + ttl * 3600,
            "aud": PRINCIPAL_AUDIENCE,
            "Duration": 168 * 3600 * 10**9,
            "AppQName": APP,
            "IssuedAt": "2023-11-14T22:12:20Z",
        }
        return jwt.encode(claims, secret, algorithm=alg)

    @pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])  # Voedger accepts any HMAC method
    def test_old_token_is_accepted_during_the_window(self, legacy: Tokens, secret: bytes, alg: str) -> None:
        clock = legacy.keys.clock
        assert isinstance(clock, ManualClock)
        info = legacy.validate(APP, self._old(secret, clock, alg))
        assert info.payload == ALICE
        assert info.issuer_cluster == 1
        assert jwt.get_unverified_header(legacy.refresh(APP, self._old(secret, clock)))["alg"] == "EdDSA"

    def test_refused_after_the_window(self, legacy: Tokens, secret: bytes, clock: ManualClock) -> None:
        token = self._old(secret, clock, ttl=1000)  # minted with the secret: any TTL
        clock.advance(LEGACY_HMAC_WINDOW - 1)
        assert legacy.validate(APP, token).payload == ALICE
        clock.advance(1)
        _refused(TokenErrorKind.MALFORMED, legacy, token)

    def test_refused_if_issued_after_the_upgrade(self, legacy: Tokens, secret: bytes, clock: ManualClock) -> None:
        assert legacy.validate(APP, self._old(secret, clock, age=1)).payload == ALICE
        err = _refused(TokenErrorKind.BAD_SIGNATURE, legacy, self._old(secret, clock, age=0))
        assert "sign in again" in err.message

    def test_refused_with_another_secret(self, legacy: Tokens, clock: ManualClock) -> None:
        _refused(TokenErrorKind.BAD_SIGNATURE, legacy, self._old(generate_secret(), clock))

    def test_a_go_issued_token_is_read(self, legacy: Tokens, secret: bytes) -> None:
        """Claims as Voedger's Go code writes them: IssuedAt in local time with nanoseconds."""
        claims = {
            "Login": "bob",
            "Alias": "",
            "SubjectKind": 1,
            "ProfileWSID": 140_737_488_486_400,
            "Roles": None,
            "GlobalRoles": None,
            "IsAPIToken": False,
            "iat": 1_700_000_000,
            "exp": 1_700_003_600,
            "aud": "payloads.PrincipalPayload",
            "Duration": 3_600_000_000_000,
            "AppQName": APP,
            "IssuedAt": "2023-11-15T01:13:20.123456789+03:00",
        }
        info = legacy.validate(APP, jwt.encode(claims, secret, algorithm="HS256"))
        assert info.payload == PrincipalPayload(login="bob", profile_wsid=140_737_488_486_400)


class TestMessages:
    def test_messages_never_hold_the_token(self, tokens: Tokens, clock: ManualClock) -> None:
        token = tokens.issue(APP, ALICE)
        clock.advance(10_000)
        with pytest.raises(TokenError) as info:
            tokens.validate(APP, token)
        assert token not in str(info.value) and token not in repr(info.value)
        assert info.value.to_v2() == b'{"status":401,"message":"token expired"}'

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=300))
    def test_fuzz_only_token_errors(self, text: str) -> None:
        tokens = Tokens(b"k" * 64, ManualClock())
        with pytest.raises(TokenError):
            tokens.validate(APP, text)

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.text(max_size=12), st.none() | st.booleans() | st.integers() | st.text(max_size=8)))
    def test_fuzz_signed_garbage_claims(self, claims: dict[str, object]) -> None:
        """A correctly signed token with arbitrary claims is either valid or a TokenError."""
        tokens = Tokens(b"k" * 64, ManualClock())
        with contextlib.suppress(TokenError):
            tokens.validate(APP, _sign(tokens, claims))

    @settings(max_examples=300, deadline=None)
    @given(
        st.fixed_dictionaries(
            {
                "aud": st.just(PRINCIPAL_AUDIENCE),
                "AppQName": st.sampled_from([APP, "x/y"]),
                "iat": st.integers(-(2**80), 2**80) | st.floats(allow_nan=False),
                "exp": st.integers(-(2**80), 2**80) | st.floats(allow_nan=False),
                "Duration": st.integers(-(2**80), 2**80),
            },
            optional={
                name: st.none()
                | st.booleans()
                | st.integers(-(2**70), 2**70)
                | st.text(max_size=8)
                | st.lists(
                    st.none()
                    | st.text(max_size=12)
                    | st.dictionaries(st.sampled_from(["WSID", "QName"]), st.integers() | st.text(max_size=8)),
                    max_size=3,
                )
                for name in ("Login", "Alias", "SubjectKind", "ProfileWSID", "Roles", "GlobalRoles", "IsAPIToken")
            },
        )
    )
    def test_fuzz_signed_principal_claims(self, claims: dict[str, object]) -> None:
        tokens = Tokens(b"k" * 64, ManualClock())
        with contextlib.suppress(TokenError):
            tokens.validate(APP, _sign(tokens, claims | {"IssuerClusterID": 1}))


class TestSecretAndHashes:
    def test_short_secret_refused(self) -> None:
        with pytest.raises(ValueError):
            Tokens(b"x" * 63)

    def test_repr_hides_secret(self, tokens: Tokens, secret: bytes) -> None:
        assert secret.hex() not in repr(tokens) and repr(secret) not in repr(tokens)

    def test_crypto_hash(self, tokens: Tokens) -> None:
        digest = tokens.crypto_hash256(b"123456")
        assert len(digest) == 32
        assert tokens.verify_hash256(b"123456", digest)
        assert not tokens.verify_hash256(b"123457", digest)


class TestRequestedTTL:
    def test_zero_is_default(self) -> None:
        assert principal_token_ttl(0) == timedelta(hours=1)

    def test_hours(self) -> None:
        assert principal_token_ttl(168) == timedelta(hours=168)

    @pytest.mark.parametrize("hours", [169, -1])
    def test_out_of_range_is_400(self, hours: int) -> None:
        with pytest.raises(SysError) as info:
            principal_token_ttl(hours)
        assert info.value.status == 400
        assert info.value.message == "max token TTL hours is 168 hours"
