"""Runs Let's Encrypt's test ACME server, Pebble, with its DNS helper pebble-challtestsrv, for
development and tests of ``voedger server --acme-domain``.

``install`` builds both from the Go module proxy with the machine's ``go`` (``go install
...@VERSION`` with ``GOBIN`` set to ``.devdata/pebble/bin``), once, and copies Pebble's own test
certificate (the one its HTTPS listener serves, for ``localhost`` and 127.0.0.1) and the CA that
signed it next to them. The classes here run them on loopback ports with configurations of their
own, in a folder the caller gives, and stop only the processes they started (by pid):

- :class:`ChallTestSrv` answers DNS; every name resolves to the address it is told (``set
  default-ipv4``, ``add-a``), so a test domain such as ``voedger.test`` leads to the server's
  loopback address;
- :class:`Pebble` asks it (``-dnsserver``) and validates HTTP-01 challenges on the port its
  configuration names. The chain of the certificates it issues comes from its management port
  (``/roots/0``, ``/intermediates/0``); it is new each time Pebble starts.

Usage::

    python -m voedger.devtools.pebble install
    python -m voedger.devtools.pebble start --dir DIR --http-port 5002 [--address 127.0.0.1]
    python -m voedger.devtools.pebble stop --dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from voedger.devtools.cassandra import devdata_dir
from voedger.devtools.processes import Daemon, free_port, read_pid

VERSION: Final = "v2.10.3"
MODULE: Final = "github.com/letsencrypt/pebble/v2"
PROGRAMS: Final = ("pebble", "pebble-challtestsrv")


class PebbleDevError(RuntimeError):
    """Building, starting or asking Pebble failed; the message says why."""


def pebble_dir() -> Path:
    return devdata_dir() / "pebble"


def binary(name: str) -> Path:
    return pebble_dir() / "bin" / name


def https_certificate() -> tuple[Path, Path]:
    """Pebble's own HTTPS certificate and key (for ``localhost`` and 127.0.0.1)."""
    return pebble_dir() / "certs" / "localhost-cert.pem", pebble_dir() / "certs" / "localhost-key.pem"


def https_ca() -> Path:
    """The CA of :func:`https_certificate`: what a client of Pebble's HTTPS trusts."""
    return pebble_dir() / "certs" / "pebble.minica.pem"


def install() -> bool:
    """Build Pebble and pebble-challtestsrv if they are not there yet; True if built now."""
    cert, key = https_certificate()
    if all(binary(p).is_file() for p in PROGRAMS) and cert.is_file() and https_ca().is_file():
        return False
    go = shutil.which("go")
    if go is None:
        raise PebbleDevError("building Pebble needs Go (the `go` command) on PATH")
    bindir = pebble_dir() / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(bindir)}
    packages = [f"{MODULE}/cmd/{p}@{VERSION}" for p in PROGRAMS]
    print(f"building {', '.join(PROGRAMS)} {VERSION} with {go} (a minute or two, once)", file=sys.stderr)
    built = subprocess.run([go, "install", *packages], env=env, stdin=subprocess.DEVNULL, check=False)
    if built.returncode != 0:
        raise PebbleDevError(f"go install {' '.join(packages)} failed (exit {built.returncode})")
    modcache = subprocess.run(
        [go, "env", "GOMODCACHE"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    source = Path(modcache) / f"{MODULE.replace('/v2', '')}/v2@{VERSION}" / "test" / "certs"
    if not source.is_dir():
        raise PebbleDevError(f"Pebble's test certificates are not in the module cache ({source})")
    certs = pebble_dir() / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    for src, dst in [
        (source / "localhost" / "cert.pem", cert),
        (source / "localhost" / "key.pem", key),
        (source / "pebble.minica.pem", https_ca()),
    ]:
        shutil.copyfile(src, dst)
        dst.chmod(0o600)
    return True


class _Daemon(Daemon):
    """A program this module started (building it first if need be), recorded in its pid file."""

    error = PebbleDevError
    keeps_pid_file = True

    def environment(self) -> dict[str, str] | None:
        return dict(os.environ)

    def start(self, timeout: float = 30.0) -> None:
        install()
        super().start(timeout)


class ChallTestSrv(_Daemon):
    """pebble-challtestsrv as a DNS server only: every A query answers ``address`` (or what
    :meth:`add_a` set for the name); no AAAA answers, so names resolve to IPv4 loopback."""

    name = "pebble-challtestsrv"

    def __init__(self, workdir: Path, address: str = "127.0.0.1") -> None:
        super().__init__(workdir)
        self.address = address
        self.dns_port = free_port()
        self.management_port = free_port()
        self.management = f"http://127.0.0.1:{self.management_port}"
        self.dns = f"127.0.0.1:{self.dns_port}"

    def command(self) -> list[str]:
        return [
            str(binary(self.name)),
            "-dnsserver",
            self.dns,
            "-management",
            f"127.0.0.1:{self.management_port}",
            "-defaultIPv4",
            self.address,
            "-defaultIPv6",
            "",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-doh",
            "",
        ]

    def ready(self) -> bool:
        self._post("/set-default-ipv4", {"ip": self.address})
        return True

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(self.management + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5) as reply:
            if reply.status != 200:
                raise PebbleDevError(f"{self.name} {path}: HTTP {reply.status}")

    def set_default_ipv4(self, address: str) -> None:
        """What every name without an A record of its own resolves to."""
        self._post("/set-default-ipv4", {"ip": address})
        self.address = address

    def add_a(self, host: str, addresses: Sequence[str]) -> None:
        """``host`` resolves to ``addresses`` too (added to what it had: :meth:`clear_a` first to replace)."""
        self._post("/add-a", {"host": host, "addresses": list(addresses)})

    def clear_a(self, host: str) -> None:
        self._post("/clear-a", {"host": host})


class Pebble(_Daemon):
    """Pebble on 127.0.0.1 with its own test certificate, asking ``dns`` for names and validating
    HTTP-01 challenges on ``http_port``; ``validity``: seconds its certificates are valid."""

    name = "pebble"

    def __init__(self, workdir: Path, *, dns: str, http_port: int, validity: int = 7776000) -> None:
        super().__init__(workdir)
        self.dns = dns
        self.http_port = http_port
        self.port = free_port()
        self.management_port = free_port()
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        self.management = f"https://127.0.0.1:{self.management_port}"
        self.config = workdir / "pebble-config.json"
        cert, key = https_certificate()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "retryAfter": {"authz": 1, "order": 1},
                "keyAlgorithm": "ecdsa",
                "profiles": {"default": {"description": "voedger's tests", "validityPeriod": validity}},
            }
        }
        self.config.write_text(json.dumps(config, indent=2) + "\n")

    def command(self) -> list[str]:
        return [str(binary(self.name)), "-config", str(self.config), "-dnsserver", self.dns]

    def environment(self) -> dict[str, str]:
        # Validate at once (Pebble waits up to 15 s at random otherwise) and never refuse a nonce
        # at random (it refuses 5 % by default, to test clients' retries).
        return {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(https_ca()))

    def ready(self) -> bool:
        with urllib.request.urlopen(self.directory, timeout=5, context=self._tls()) as reply:
            return bool(reply.status == 200)

    def _get(self, path: str) -> str:
        with urllib.request.urlopen(self.management + path, timeout=5, context=self._tls()) as reply:
            return str(reply.read().decode())

    def root(self) -> str:
        """The PEM root certificate of the certificates this Pebble issues."""
        return self._get("/roots/0")

    def intermediate(self) -> str:
        return self._get("/intermediates/0")

    def orders(self) -> int:
        """Orders made so far (counted in Pebble's log)."""
        try:
            return self.log.read_text(errors="replace").count("to the db\n")
        except OSError:
            return 0


def _stop_pid(path: Path) -> None:
    pid = read_pid(path)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voedger.devtools.pebble", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build pebble and pebble-challtestsrv once (go install)")
    start = commands.add_parser("start", help="start both in the background; their logs and pids go to --dir")
    start.add_argument("--dir", required=True, type=Path)
    start.add_argument("--http-port", required=True, type=int, help="where Pebble validates HTTP-01 challenges")
    start.add_argument("--address", default="127.0.0.1", help="what every name resolves to (a loopback address)")
    start.add_argument("--validity", default=7776000, type=int, help="seconds the certificates are valid")
    stop = commands.add_parser("stop", help="stop what `start` started in --dir")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            built = install()
            print(f"pebble {VERSION}: {'built' if built else 'already built'} in {pebble_dir() / 'bin'}")
        elif args.command == "start":
            dns = ChallTestSrv(args.dir, args.address)
            dns.start()
            pebble = Pebble(args.dir, dns=dns.dns, http_port=args.http_port, validity=args.validity)
            try:
                pebble.start()
            except PebbleDevError:
                dns.stop()
                raise
            root = args.dir / "pebble-root.pem"
            root.write_text(pebble.root())
            print(f"ACME directory: {pebble.directory}")
            print(f"its HTTPS CA:   {https_ca()}  (--acme-ca-bundle)")
            print(f"issuing root:   {root}")
            print(f"DNS management: {dns.management} (every name resolves to {args.address})")
        else:
            for name in ("pebble", "pebble-challtestsrv"):
                _stop_pid(args.dir / f"{name}.pid")
    except PebbleDevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
