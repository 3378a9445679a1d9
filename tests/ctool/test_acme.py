"""``ctool acme add|list|remove`` on a CE test node over real SSH, with Pebble as the CA: the
node's server orders a certificate for the domain, serves HTTPS with it, and goes back to plain
HTTP when the domain is removed. Run with VOEDGER_CTOOL_FIRST_HOST set (make test-ctool)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from tests.certificates.test_acme_pebble import peer_certificate, san
from tests.ctool.test_ce import HTTP_PORT, check, cluster_json, ctool, init_args
from tests.support import free_port
from voedger.devtools import sshnodes
from voedger.devtools.pebble import ChallTestSrv, Pebble, https_ca, install

pytestmark = pytest.mark.ctool

DOMAIN = "voedger.test"


def test_acme_add_serves_https_with_an_ordered_certificate_and_remove_goes_back(
    ssh_nodes: Callable[[int], sshnodes.SshCluster], short_tmp: Path, server_wheel: Path
) -> None:
    install()
    cluster = ssh_nodes(1)
    node = cluster.nodes[0]
    folder = short_tmp / "ops"
    folder.mkdir()
    done = ctool(folder, *init_args(cluster, "--wheel", str(server_wheel)))
    assert done.returncode == 0, done.stdout + done.stderr

    # The CA validates on the node's address, at the cluster's HTTP port.
    dns = ChallTestSrv(short_tmp / "dns", node.address)
    dns.start()
    pebble = Pebble(short_tmp / "pebble", dns=dns.dns, http_port=HTTP_PORT)
    try:
        pebble.start()
        https_port = free_port()
        added = ctool(
            folder,
            *("acme", "add", DOMAIN, "--directory", pebble.directory, "--ca-bundle", str(https_ca())),
            *("--email", "ops@voedger.test", "--https-port", str(https_port)),
        )
        assert added.returncode == 0, added.stdout + added.stderr
        assert "acme done" in added.stderr
        data = cluster_json(folder)
        assert data["Acme"]["Domains"] == [DOMAIN] and "Cmd" not in data
        program = (node.root / "etc/voedger/supervisor.d/voedger.conf").read_text()
        assert f"--port {https_port} --metrics-port 8000 --acme-domain {DOMAIN} --acme-http-port {HTTP_PORT}" in program
        listed = ctool(folder, "acme", "list")
        assert listed.returncode == 0 and listed.stdout.split() == [DOMAIN]

        root = short_tmp / "root.pem"
        root.write_text(pebble.root())

        async def certificate() -> x509.Certificate:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                cert = await peer_certificate(https_port, DOMAIN, root, node.address)
                if cert is not None:
                    return cert
                await asyncio.sleep(0.5)
            raise AssertionError("the node served no certificate in 90 s")

        cert = asyncio.run(certificate())
        assert san(cert) == [DOMAIN]
        assert pebble.orders() == 1

        removed = ctool(folder, "acme", "remove", DOMAIN)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "Acme" not in cluster_json(folder)
        assert check(node.address) == 200  # plain HTTP on the HTTP port again
    finally:
        pebble.stop()
        dns.stop()
