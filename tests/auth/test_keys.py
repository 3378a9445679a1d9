"""Ed25519 keys, key rings and the federation's token rules: the main cluster signs the tokens of
users, every cluster verifies them locally, a worker signs only its System tokens and its own
cluster's tokens, keys travel as JWKs and rotate without downtime."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import pickle
import stat
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from voedger.appdef import QName
from voedger.auth import (
    ClusterKeys,
    FileKeySetStore,
    KeyImportError,
    KeyRing,
    KeyScope,
    PrincipalPayload,
    RoleInWorkspace,
    SecretStoreError,
    SigningKey,
    StorageKeySetStore,
    TokenError,
    TokenErrorKind,
    Tokens,
    VerificationKey,
    generate_secret,
)
from voedger.auth.keys import key_id
from voedger.auth.keystore import LEGACY_HMAC_WINDOW
from voedger.auth.tokens import PRINCIPAL_AUDIENCE
from voedger.clock import ManualClock
from voedger.storage import AppStorage
from voedger.storage.mem import MemStorageFactory
from voedger.syserror import SysError

from .conftest import APP

ALICE = PrincipalPayload(login="alice", profile_wsid=(2 << 47) + 0x20000, alias="alice")
VERIFIED = "payloads.VerifiedValuePayload"


@dataclass
class Cluster:
    id: int
    keys: ClusterKeys
    tokens: Tokens


def _cluster(cid: int, clock: ManualClock) -> Cluster:
    keys = ClusterKeys.ephemeral(cid, clock)
    return Cluster(cid, keys, Tokens(generate_secret(), clock, keys))


def _share(clusters: list[Cluster]) -> None:
    """What the federation directory does: each cluster's JWKs into every other ring."""
    for c in clusters:
        for other in clusters:
            if other is not c:
                other.keys.ring.update_cluster(c.id, c.keys.jwks())


@pytest.fixture
def federation(clock: ManualClock) -> list[Cluster]:
    clusters = [_cluster(cid, clock) for cid in (1, 2, 3)]
    _share(clusters)
    return clusters


def _refused(tokens: Tokens, token: str, kind: TokenErrorKind, audience: str = PRINCIPAL_AUDIENCE) -> TokenError:
    with pytest.raises(TokenError) as info:
        tokens.validate_claims(APP, audience, token)
    assert info.value.kind is kind, info.value
    assert info.value.status == 401
    if audience == PRINCIPAL_AUDIENCE:
        with pytest.raises(TokenError):
            tokens.validate(APP, token)
    return info.value


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    decoded: dict[str, object] = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def _storage() -> AppStorage:
    factory = MemStorageFactory(ManualClock())
    await factory.init("sys_vvm")
    return await factory.app_storage("sys_vvm")


class TestTokensAcrossTheFederation:
    def test_a_user_token_of_main_is_verified_by_every_cluster(self, federation: list[Cluster]) -> None:
        main = federation[0]
        token = main.tokens.issue(APP, ALICE)
        for c in federation:
            info = c.tokens.validate(APP, token)
            assert info.payload == ALICE
            assert info.issuer_cluster == 1

    def test_a_workers_system_token_is_verified_everywhere_and_names_it(self, federation: list[Cluster]) -> None:
        worker = federation[1]
        token = worker.tokens.issue_system(APP)
        assert jwt.get_unverified_header(token)["kid"] == worker.keys.signing.kid
        assert _claims(token)["IssuerClusterID"] == 2
        for c in federation:
            info = c.tokens.validate(APP, token)
            assert info.payload.is_system and info.issuer_cluster == 2

    def test_a_worker_cannot_issue_user_tokens(self, federation: list[Cluster]) -> None:
        worker = federation[1].tokens
        assert not worker.may_issue_principals and federation[0].tokens.may_issue_principals
        for issue in (
            lambda: worker.issue(APP, ALICE),
            lambda: worker.issue_claims(APP, PRINCIPAL_AUDIENCE, {"Login": "x"}, timedelta(hours=1)),
            lambda: worker.issue_api_token(APP, ALICE, [QName("app", "Waiter")], 5),
        ):
            with pytest.raises(SysError) as info:
                issue()
            assert info.value.status == 403

    def test_a_worker_refreshing_a_user_token_cannot(self, federation: list[Cluster]) -> None:
        token = federation[0].tokens.issue(APP, ALICE)
        with pytest.raises(SysError) as info:
            federation[1].tokens.refresh(APP, token)
        assert info.value.status == 403

    @pytest.mark.parametrize(
        "payload",
        [
            ALICE,
            PrincipalPayload(login="system", profile_wsid=5),
            PrincipalPayload(login="alice", profile_wsid=0),  # a user's login on a System profile
            PrincipalPayload(login="system", profile_wsid=0, global_roles=(QName("sys", "ClusterAdmin"),)),
            PrincipalPayload(login="system", profile_wsid=0, roles=(RoleInWorkspace(7, QName("app", "Owner")),)),
            PrincipalPayload(login="system", profile_wsid=0, is_api_token=True),
            PrincipalPayload(login="system", profile_wsid=0, alias="alice"),
        ],
    )
    def test_a_compromised_worker_cannot_mint_a_user_token(
        self, federation: list[Cluster], clock: ManualClock, payload: PrincipalPayload
    ) -> None:
        """The worker's private key in an attacker's hands: whatever principal it signs other
        than the bare System one is refused everywhere, by the worker itself too."""
        main, worker, _ = federation
        honest = _claims(main.tokens.issue(APP, payload))  # what main would have issued
        for issuer in (2, 1):  # its own cluster ID, or main's
            forged = worker.keys.signing.sign(honest | {"IssuerClusterID": issuer})
            for c in federation:
                _refused(c.tokens, forged, TokenErrorKind.WRONG_ISSUER)

    def test_a_system_token_cannot_pretend_to_be_main(self, federation: list[Cluster]) -> None:
        _, worker, other = federation
        claims = _claims(worker.tokens.issue_system(APP)) | {"IssuerClusterID": 1}
        err = _refused(other.tokens, worker.keys.signing.sign(claims), TokenErrorKind.WRONG_ISSUER)
        assert err.message == "token names another issuer than the key that signed it"

    def test_a_workers_own_tokens_stay_in_its_cluster(self, federation: list[Cluster]) -> None:
        """Verification codes and verified values a worker issues are for itself only."""
        main, worker, other = federation
        token = worker.tokens.issue_claims(APP, VERIFIED, {"Entity": "app.T"}, timedelta(minutes=10))
        assert worker.tokens.validate_claims(APP, VERIFIED, token)["Entity"] == "app.T"
        _refused(other.tokens, token, TokenErrorKind.WRONG_ISSUER, VERIFIED)
        _refused(main.tokens, token, TokenErrorKind.WRONG_ISSUER, VERIFIED)
        mains = main.tokens.issue_claims(APP, VERIFIED, {"Entity": "app.T"}, timedelta(minutes=10))
        assert other.tokens.validate_claims(APP, VERIFIED, mains)["Entity"] == "app.T"

    def test_a_cluster_not_in_the_ring_is_not_trusted(self, federation: list[Cluster], clock: ManualClock) -> None:
        stranger = _cluster(4, clock)
        token = stranger.tokens.issue_system(APP)
        for c in federation:
            _refused(c.tokens, token, TokenErrorKind.BAD_SIGNATURE)
        federation[0].keys.ring.update_cluster(4, stranger.keys.jwks())
        assert federation[0].tokens.validate(APP, token).issuer_cluster == 4
        federation[0].keys.ring.remove_cluster(4)
        _refused(federation[0].tokens, token, TokenErrorKind.BAD_SIGNATURE)

    def test_a_main_cluster_signing_with_a_workers_key_id(self, federation: list[Cluster]) -> None:
        """The header names the worker's key, the signature is main's: the worker's key decides."""
        main, worker, other = federation
        claims = _claims(main.tokens.issue(APP, ALICE))
        token = jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": worker.keys.signing.kid}
        )
        _refused(other.tokens, token, TokenErrorKind.BAD_SIGNATURE)


class TestJWK:
    def test_rfc8037_thumbprint_vector(self) -> None:
        """RFC 8037, appendix A.3: the thumbprint of the example public key."""
        x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        assert key_id(base64.urlsafe_b64decode(x + "=")) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        key = VerificationKey.from_jwk(
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}
            | {"voedger_cluster": 1, "voedger_scope": "principal"}
        )
        assert key.cluster_id == 1 and key.scope is KeyScope.PRINCIPAL

    def test_shape(self) -> None:
        key = SigningKey.generate(2)
        jwk = key.verification_key.to_jwk()
        assert jwk == {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": jwk["x"],
            "kid": key.kid,
            "use": "sig",
            "alg": "EdDSA",
            "voedger_cluster": 2,
            "voedger_scope": "system",
        }
        assert base64.urlsafe_b64decode(jwk["x"] + "=") == key.verification_key.raw
        assert key.kid == key_id(key.verification_key.raw)
        assert VerificationKey.from_jwk(orjson.loads(orjson.dumps(jwk))) == key.verification_key

    def test_jwks_of_and_update_cluster_round_trip(self, clock: ManualClock) -> None:
        main = ClusterKeys.ephemeral(1, clock)
        worker = ClusterKeys.ephemeral(2, clock)
        worker.ring.update_cluster(1, main.ring.jwks_of(1))
        assert worker.ring.jwks_of(1) == main.jwks() == main.ring.jwks_of(1)
        assert worker.ring.clusters() == [1, 2]
        worker.ring.update_cluster(1, {"keys": main.jwks()})  # a JWK set works as well
        assert worker.ring.keys_of(1) == main.ring.keys_of(1)

    def test_update_replaces_the_clusters_keys(self, clock: ManualClock) -> None:
        ring = KeyRing(1)
        a, b = SigningKey.generate(2), SigningKey.generate(2)
        ring.update_cluster(2, [a.verification_key.to_jwk()])
        ring.update_cluster(2, [b.verification_key.to_jwk()])
        assert a.kid not in ring and b.kid in ring
        ring.update_cluster(3, [SigningKey.generate(3).verification_key.to_jwk()])
        assert ring.clusters() == [2, 3]

    def test_revocations_count_keys_that_stop_verifying(self) -> None:
        ring = KeyRing(1)
        a, b = (SigningKey.generate(2).verification_key.to_jwk() for _ in range(2))
        ring.update_cluster(2, [a])
        ring.update_cluster(2, [a])  # the directory again, unchanged
        ring.update_cluster(2, [a, b])  # a key added
        assert ring.revocations == 0
        ring.update_cluster(2, [b])
        assert ring.revocations == 1
        ring.remove_cluster(2)
        assert ring.revocations == 2 and len(ring) == 0

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"d": "AAAA"}, "private part"),
            ({"kty": "RSA"}, "'kty' must be 'OKP'"),
            ({"crv": "X25519"}, "'crv' must be 'Ed25519'"),
            ({"use": "enc"}, "'use' must be 'sig'"),
            ({"alg": "RS256"}, "'alg' must be 'EdDSA'"),
            ({"x": "AAAA"}, "'x' must be 32 bytes"),
            ({"x": "+" * 43}, "'x' must be 32 bytes"),
            ({"x": None}, "'x' must be 32 bytes"),
            ({"kid": "short"}, "'kid'"),
            ({"kid": "has spaces in it"}, "'kid'"),
            ({"kid": None}, "'kid'"),
            ({"voedger_cluster": 3}, "but the keys are of cluster 2"),
            ({"voedger_cluster": True}, "'voedger_cluster'"),
            ({"voedger_cluster": "2"}, "'voedger_cluster'"),
            ({"voedger_cluster": 70000}, "'voedger_cluster'"),
            ({"voedger_scope": "admin"}, "'voedger_scope' must be one of"),
            ({"voedger_scope": None}, "'voedger_scope' must be one of"),
            ({"voedger_scope": "principal"}, "only keys of the main cluster"),
        ],
    )
    def test_bad_jwk_is_a_clear_error_and_changes_nothing(self, change: dict[str, object], message: str) -> None:
        ring = KeyRing(1)
        good = SigningKey.generate(2).verification_key.to_jwk()
        ring.update_cluster(2, [good])
        jwk = SigningKey.generate(2).verification_key.to_jwk() | change
        with pytest.raises(KeyImportError) as info:
            ring.update_cluster(2, [SigningKey.generate(2).verification_key.to_jwk(), jwk])
        assert str(info.value).startswith("key 1 of cluster 2: ")
        assert message in str(info.value)
        assert ring.jwks_of(2) == [good]  # all or nothing

    @pytest.mark.parametrize("jwks", ["keys", b"keys", 5, None, {"keys": "x"}, {}, [5], [None]])
    def test_not_a_key_list(self, jwks: object) -> None:
        with pytest.raises(KeyImportError):
            KeyRing(1).update_cluster(2, jwks)  # type: ignore[arg-type]

    def test_a_worker_cannot_take_over_a_key_id_of_main(self, clock: ManualClock) -> None:
        main = ClusterKeys.ephemeral(1, clock)
        ring = KeyRing(3)
        ring.update_cluster(1, main.jwks())
        impostor = SigningKey.generate(2).verification_key.to_jwk() | {"kid": main.signing.kid}
        with pytest.raises(KeyImportError) as info:
            ring.update_cluster(2, [impostor])
        assert "belongs to cluster 1" in str(info.value)
        assert ring.get(main.signing.kid) == main.signing.verification_key

    def test_a_key_id_twice(self) -> None:
        jwk = SigningKey.generate(2).verification_key.to_jwk()
        with pytest.raises(KeyImportError, match="given twice"):
            KeyRing(1).update_cluster(2, [jwk, jwk])

    def test_too_many_keys(self) -> None:
        with pytest.raises(KeyImportError, match="at most 16"):
            KeyRing(1).update_cluster(2, [SigningKey.generate(2).verification_key.to_jwk() for _ in range(17)])

    @pytest.mark.parametrize("cid", [0, -1, 65536, True])
    def test_bad_cluster_id(self, cid: int) -> None:
        with pytest.raises(KeyImportError):
            KeyRing(1).update_cluster(cid, [])

    def test_the_local_clusters_keys_come_from_its_store(self, clock: ManualClock) -> None:
        keys = ClusterKeys.ephemeral(2, clock)
        with pytest.raises(KeyImportError, match="local cluster"):
            keys.ring.update_cluster(2, ClusterKeys.ephemeral(2, clock).jwks())
        assert keys.ring.jwks_of(2) == keys.jwks()

    def test_principal_scope_only_on_main(self) -> None:
        with pytest.raises(ValueError):
            VerificationKey.from_raw(SigningKey.generate(1).verification_key.raw, 2, KeyScope.PRINCIPAL)
        assert SigningKey.generate(1).scope is KeyScope.PRINCIPAL
        assert SigningKey.generate(9).scope is KeyScope.SYSTEM


class TestRotation:
    def test_old_and_new_tokens_verify_until_the_old_key_is_removed(self, clock: ManualClock) -> None:
        async def run() -> None:
            main = await ClusterKeys.open(StorageKeySetStore(await _storage()), 1, clock)
            tokens = Tokens(generate_secret(), clock, main)
            worker = _cluster(2, clock)
            worker.keys.ring.update_cluster(1, main.jwks())
            old_kid = main.signing.kid
            old = tokens.issue(APP, ALICE)

            staged = await main.stage()
            assert main.signing.kid == old_kid  # staged: published, not signing yet
            assert staged in main.ring and staged in [j["kid"] for j in main.jwks()]
            worker.keys.ring.update_cluster(1, main.jwks())  # the directory spreads it
            await main.activate(staged)
            new = tokens.issue(APP, ALICE)
            assert jwt.get_unverified_header(new)["kid"] == staged != old_kid
            for t in (tokens, worker.tokens):
                assert t.validate(APP, old).payload == ALICE
                assert t.validate(APP, new).payload == ALICE

            with pytest.raises(ValueError, match="signing key cannot be removed"):
                await main.remove(staged)
            await main.remove(old_kid)
            worker.keys.ring.update_cluster(1, main.jwks())
            for t in (tokens, worker.tokens):
                _refused(t, old, TokenErrorKind.BAD_SIGNATURE)
                assert t.validate(APP, new).payload == ALICE

        asyncio.run(run())

    async def test_rotate_then_other_processes_reload(self, clock: ManualClock) -> None:
        storage = await _storage()
        p1, p2 = [await ClusterKeys.open(StorageKeySetStore(storage), 2, clock) for _ in range(2)]
        t1, t2 = Tokens(generate_secret(), clock, p1), Tokens(generate_secret(), clock, p2)
        first = p1.signing.kid
        assert p2.signing.kid == first
        new = await p1.rotate()
        before_reload = t2.issue_system(APP)  # p2 still signs with the old key: still valid
        assert t1.validate(APP, before_reload).payload.is_system
        assert p2.signing.kid == first
        await p2.reload()
        assert p2.signing.kid == new and p2.kids() == [first, new]
        assert t1.validate(APP, t2.issue_system(APP)).payload.is_system

    async def test_run_reloads_follows_the_store(self, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
        storage = await _storage()
        p1, p2 = [await ClusterKeys.open(StorageKeySetStore(storage), 1, clock) for _ in range(2)]
        task = asyncio.create_task(p2.run_reloads(0.01))
        try:
            new = await p1.rotate()
            for _ in range(200):
                if p2.signing.kid == new:
                    break
                await asyncio.sleep(0.01)
            assert p2.signing.kid == new
            await StorageKeySetStore(storage).replace(await StorageKeySetStore(storage).load() or b"", b"garbage")
            for _ in range(200):
                if "cannot reload the signing keys" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert "cannot reload the signing keys of cluster 1" in caplog.text
            assert not task.done() and p2.signing.kid == new  # still serving with what it had
        finally:
            task.cancel()
        with pytest.raises(ValueError):
            await p2.run_reloads(0)

    async def test_concurrent_changes_lose_nothing(self, clock: ManualClock) -> None:
        storage = await _storage()
        processes = [await ClusterKeys.open(StorageKeySetStore(storage), 1, clock) for _ in range(4)]
        staged = await asyncio.gather(*(p.stage() for p in processes))
        fresh = await ClusterKeys.open(StorageKeySetStore(storage), 1, clock)
        assert set(staged) < set(fresh.kids()) and len(fresh.kids()) == 5

    async def test_ephemeral_keys_rotate_in_memory(self, clock: ManualClock) -> None:
        keys = ClusterKeys.ephemeral(1, clock)
        old = keys.signing.kid
        new = await keys.rotate()
        assert keys.kids() == [old, new] and keys.signing.kid == new
        await keys.reload()  # nothing to read
        with pytest.raises(KeyError):
            await keys.activate("no-such-key-id")
        with pytest.raises(KeyError):
            await keys.remove("no-such-key-id")


class TestKeyStores:
    async def test_one_key_set_per_cluster_in_storage(self, clock: ManualClock) -> None:
        storage = await _storage()
        opened = await asyncio.gather(*(ClusterKeys.open(StorageKeySetStore(storage), 1, clock) for _ in range(8)))
        assert len({k.signing.kid for k in opened}) == 1

    async def test_another_clusters_keys_are_refused(self, clock: ManualClock) -> None:
        storage = await _storage()
        await ClusterKeys.open(StorageKeySetStore(storage), 1, clock)
        with pytest.raises(SecretStoreError, match="of cluster 1, not of cluster 2"):
            await ClusterKeys.open(StorageKeySetStore(storage), 2, clock)

    @pytest.mark.parametrize(
        "record",
        [
            b"not json",
            b"[]",
            b'{"version": 2}',
            b'{"version": 1, "cluster": 1, "keys": [], "active": "x", "hmac_until": 0}',
            b'{"version": 1, "cluster": 1, "keys": [{"kid": "x", "d": "AAAA", "created": 0}], "active": "x",'
            b' "hmac_until": 0}',
        ],
    )
    async def test_malformed_records(self, clock: ManualClock, record: bytes) -> None:
        storage = await _storage()
        await StorageKeySetStore(storage).create(record)
        with pytest.raises(SecretStoreError, match="malformed"):
            await ClusterKeys.open(StorageKeySetStore(storage), 1, clock)

    async def test_a_record_whose_key_id_lies(self, clock: ManualClock) -> None:
        storage = await _storage()
        keys = await ClusterKeys.open(StorageKeySetStore(storage), 1, clock)
        raw = await StorageKeySetStore(storage).load()
        assert raw is not None
        data = orjson.loads(raw)
        data["keys"][0]["d"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
        assert await StorageKeySetStore(storage).replace(raw, orjson.dumps(data))
        with pytest.raises(SecretStoreError, match="does not match"):
            await keys.reload()

    async def test_file_store(self, tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        directory = tmp_path / "secrets"
        keys = await ClusterKeys.open(FileKeySetStore(directory), 1, clock)
        store = FileKeySetStore(directory)
        if sys.platform != "win32":
            assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        again = await ClusterKeys.open(FileKeySetStore(directory), 1, clock)
        assert again.signing.kid == keys.signing.kid
        new = await keys.rotate()
        await again.reload()
        assert again.signing.kid == new
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert not store.replace_sync(b"stale", b"x")  # compare-and-swap
        assert sorted(p.name for p in directory.iterdir()) == [".signingKeysEd25519.lock", "signingKeysEd25519"]
        seed = keys.signing.private_bytes()
        for text in (caplog.text, repr(keys), repr(keys.signing), repr(store), repr(keys.ring)):
            assert seed.hex() not in text and base64.urlsafe_b64encode(seed).decode() not in text
        assert keys.signing.kid in caplog.text  # the log names the keys, not their seeds

    def test_file_store_processes_racing(self, tmp_path: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        stores = [FileKeySetStore(tmp_path) for _ in range(16)]
        with ThreadPoolExecutor(8) as pool:
            records = list(pool.map(lambda s: s.create_sync(os.urandom(40)), stores))
        assert len(set(records)) == 1
        assert os.listdir(tmp_path) == ["signingKeysEd25519"]

    def test_a_signing_key_is_not_pickled(self) -> None:
        with pytest.raises(TypeError):
            pickle.dumps(SigningKey.generate(1))


class TestLegacyWindow:
    async def test_only_main_accepts_hs256_of_before_the_upgrade(self, clock: ManualClock) -> None:
        main = await ClusterKeys.open(StorageKeySetStore(await _storage()), 1, clock, legacy_hmac=True)
        worker = await ClusterKeys.open(StorageKeySetStore(await _storage()), 2, clock, legacy_hmac=True)
        fresh = await ClusterKeys.open(StorageKeySetStore(await _storage()), 1, clock)
        assert main.hmac_until == clock.now() + LEGACY_HMAC_WINDOW
        assert worker.hmac_until == 0 and fresh.hmac_until == 0
        secret = generate_secret()
        claims = _claims(Tokens(secret, clock).issue(APP, ALICE)) | {"iat": int(clock.now()) - 1}
        del claims["IssuerClusterID"]
        hs256 = jwt.encode(claims, secret, algorithm="HS256")
        assert Tokens(secret, clock, main).validate(APP, hs256).payload == ALICE
        _refused(Tokens(secret, clock, worker), hs256, TokenErrorKind.MALFORMED)
        _refused(Tokens(secret, clock, fresh), hs256, TokenErrorKind.MALFORMED)

    def test_the_public_key_is_no_hmac_secret(self, clock: ManualClock) -> None:
        """Algorithm confusion: HS256 keyed with a published public key is refused even while
        HS256 is accepted (only the cluster's secret keys HMAC)."""
        keys = ClusterKeys.ephemeral(1, clock, hmac_until=clock.now() + LEGACY_HMAC_WINDOW)
        tokens = Tokens(generate_secret(), clock, keys)
        claims = _claims(tokens.issue(APP, ALICE)) | {"iat": int(clock.now()) - 1}
        del claims["IssuerClusterID"]
        for secret in (keys.signing.verification_key.raw, keys.jwks()[0]["x"].encode()):
            _refused(tokens, jwt.encode(claims, secret, algorithm="HS256"), TokenErrorKind.BAD_SIGNATURE)

    async def test_the_window_is_decided_once(self, clock: ManualClock) -> None:
        storage = await _storage()
        first = await ClusterKeys.open(StorageKeySetStore(storage), 1, clock, legacy_hmac=True)
        clock.advance(100)
        later = await ClusterKeys.open(StorageKeySetStore(storage), 1, clock, legacy_hmac=False)
        assert later.hmac_until == first.hmac_until > 0
