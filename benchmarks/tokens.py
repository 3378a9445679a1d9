"""Token benchmark: issue and verify per second, HS256 (the tokens of before the federation)
against EdDSA (Ed25519, what every cluster signs with now).

    python benchmarks/tokens.py [--seconds 1.0] [--repeats 5]

Every row runs its operation in a loop for ``--seconds``, ``--repeats`` times, and prints the best
rate (a shared machine only ever slows a run down) and the time of one operation. The rows:

- ``issue`` / ``verify`` through :class:`voedger.auth.Tokens`: what a sign-in and each request
  pay (verify: signature, claims, expiry, application, issuer; the router then caches a
  validated token until it expires, so a client's later requests do not pay it again);
- ``HS256 issue`` is PyJWT's encode with the secret and the same claims, as ``Tokens.issue`` did
  before; ``HS256 verify`` goes through ``Tokens.validate`` in the upgrade window;
- ``raw`` rows: the signature alone (HMAC-SHA256 of the signing input, Ed25519 sign and verify
  through ``cryptography``), to show what the JWT layer adds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jwt

from voedger.appdef import QName
from voedger.auth import ClusterKeys, PrincipalPayload, RoleInWorkspace, Tokens, generate_secret
from voedger.auth.keystore import LEGACY_HMAC_WINDOW
from voedger.clock import SYSTEM_CLOCK

APP = "untill/restaurant"
PAYLOAD = PrincipalPayload(
    login="alice@example.com",
    alias="alice",
    profile_wsid=140_737_488_486_400,
    roles=(RoleInWorkspace(140_737_488_486_401, QName("staff", "Manager")),),
    global_roles=(QName("sys", "ClusterAdmin"),),
)


def rate(op: Callable[[], object], seconds: float, repeats: int) -> float:
    """The best operations per second of ``repeats`` runs of ``seconds`` each."""
    best = 0.0
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(100):
                op()
            n += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    secret = generate_secret()
    keys = ClusterKeys.ephemeral(1, SYSTEM_CLOCK, hmac_until=SYSTEM_CLOCK.now() + LEGACY_HMAC_WINDOW)
    tokens = Tokens(secret, SYSTEM_CLOCK, keys)
    eddsa = tokens.issue(APP, PAYLOAD)
    claims = dict(tokens.validate(APP, eddsa).claims)
    del claims["IssuerClusterID"]
    claims["iat"] -= 1  # issued before the upgrade
    hs256 = jwt.encode(claims, secret, algorithm="HS256")
    assert tokens.validate(APP, hs256).payload == PAYLOAD
    signing_input = eddsa.rpartition(".")[0].encode()
    private = keys.signing._private  # the raw primitive, for the comparison only
    public = keys.signing.verification_key.public_key
    signature = private.sign(signing_input)

    rows: list[tuple[str, str, Callable[[], object]]] = [
        ("HS256", "issue", lambda: jwt.encode(claims, secret, algorithm="HS256")),
        ("HS256", "verify", lambda: tokens.validate(APP, hs256)),
        ("EdDSA", "issue", lambda: tokens.issue(APP, PAYLOAD)),
        ("EdDSA", "verify", lambda: tokens.validate(APP, eddsa)),
        ("HMAC-SHA256 raw", "sign", lambda: hmac.new(secret, signing_input, hashlib.sha256).digest()),
        ("Ed25519 raw", "sign", lambda: private.sign(signing_input)),
        ("Ed25519 raw", "verify", lambda: public.verify(signature, signing_input)),
    ]
    print(f"token: {len(eddsa)} characters EdDSA, {len(hs256)} HS256; best of {args.repeats} x {args.seconds} s")
    print(f"{'algorithm':<16} {'operation':<8} {'per second':>12} {'µs each':>9}")
    for name, op_name, op in rows:
        r = rate(op, args.seconds, args.repeats)
        print(f"{name:<16} {op_name:<8} {r:>12,.0f} {1e6 / r:>9.1f}")


if __name__ == "__main__":
    main()
