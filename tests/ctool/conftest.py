"""Test nodes for the ctool tier: sshd's on 127.0.0.11, .12, ... started and stopped by pid."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voedger import __version__
from voedger.devtools import sshnodes

NEW_VERSION = f"{__version__}+ops1"
"""The version of the wheel the upgrade tests upgrade to: this one, with a local label."""


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path: unix sockets under it must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ctool-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ssh_nodes(short_tmp: Path) -> Iterator[Callable[[int], sshnodes.SshCluster]]:
    """Starts ``count`` test nodes; at the end stops their sshd's and what ctool started there."""
    if sshnodes.missing_packages():
        pytest.fail("openssh-server or supervisor missing: run python -m voedger.devtools.sshnodes ensure-packages")
    started: list[sshnodes.SshCluster] = []

    def start(count: int) -> sshnodes.SshCluster:
        cluster = sshnodes.nodes(short_tmp, count)
        started.append(cluster)
        sshnodes.start(cluster)
        return cluster

    yield start
    for cluster in started:
        sshnodes.stop(cluster)
        for node in cluster.nodes:
            sshnodes.stop_services(node)


@pytest.fixture(scope="session")
def server_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's wheel, built once from this checkout for the tests that pass --wheel."""
    from voedger.ctool import wheel

    return wheel.build(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def new_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's wheel of this checkout, as a build with another version (a local label)."""
    from voedger.ctool import wheel

    return wheel.build(tmp_path_factory.mktemp("wheel-new"), version=NEW_VERSION)


@pytest.fixture(scope="session")
def app_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image of the load application (tests/cluster/app) the servers run (init --app)."""
    from tests.ctool import appclient

    return appclient.build_image(tmp_path_factory.mktemp("app"))
