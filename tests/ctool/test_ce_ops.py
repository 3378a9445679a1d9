"""ctool upgrade, backup and restore of a CE node (one server on SQLite) over real SSH."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.ctool import appclient
from tests.ctool.conftest import NEW_VERSION
from tests.ctool.test_ce import HTTP_PORT, Nodes, cluster_json, ctool, init_args
from voedger import __version__

pytestmark = pytest.mark.ctool


def downtime(url: str, stop: threading.Event, out: list[float]) -> None:
    """The longest span during which ``url``/api/check did not answer 200, while not ``stop``."""
    down_since: float | None = None
    longest = 0.0
    while not stop.is_set():
        try:
            ok = httpx.get(f"{url}/api/check", timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        now = time.monotonic()
        if ok and down_since is not None:
            longest = max(longest, now - down_since)
            down_since = None
        elif not ok and down_since is None:
            down_since = now
        time.sleep(0.1)
    out.append(longest)


def test_ce_upgrade_backup_restore(
    ssh_nodes: Nodes, short_tmp: Path, server_wheel: Path, new_wheel: Path, app_image: Path
) -> None:
    cluster = ssh_nodes(1)
    node = cluster.nodes[0]
    folder = short_tmp / "ops"
    folder.mkdir()
    args = init_args(cluster, "--wheel", str(server_wheel), "--app", f"{appclient.APP}={app_image}")
    done = ctool(folder, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cluster_json(folder)["Apps"][0]["Name"] == appclient.APP
    url = f"http://{node.address}:{HTTP_PORT}"
    storage = f"sqlite://{node.root}/var/lib/voedger"
    api = appclient.Client([url], appclient.system_token(storage))
    first = api.write(12)

    # Upgrade: the new version installed beside the old one, switched, the server restarted.
    stop, longest = threading.Event(), list[float]()
    poller = threading.Thread(target=downtime, args=(url, stop, longest))
    poller.start()
    try:
        up = ctool(folder, "upgrade", "--wheel", str(new_wheel))
    finally:
        stop.set()
        poller.join()
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"CE upgrade: the server did not answer /api/check for {longest[0]:.1f} s at most")
    assert "n1-node: version " + NEW_VERSION + " serves" in up.stderr
    data = cluster_json(folder)
    assert data["ActualClusterVersion"] == NEW_VERSION and "Cmd" not in data
    assert data["Nodes"][0]["ActualNodeState"]["NodeVersion"] == NEW_VERSION
    venv = node.root / "opt/voedger/venv"
    assert venv.is_symlink() and str(venv.readlink()) == f"venvs/{NEW_VERSION}"
    assert (node.root / f"opt/voedger/venvs/{__version__}/bin/voedger").exists()  # the old one, kept

    reported = subprocess.run([str(venv / "bin/voedger"), "--version"], capture_output=True, text=True, check=True)
    assert NEW_VERSION in reported.stdout
    assert "installed " + NEW_VERSION in ctool(folder, "status").stdout
    again = ctool(folder, "upgrade", "--wheel", str(new_wheel))
    assert again.returncode == 0 and "Nothing to upgrade" in again.stdout
    for record in first:
        assert (api.read(record) or {}).get("Token") == record.token

    # A backup, then more records and some deactivated: the restore brings back the backup's.
    backup = ctool(folder, "backup", "now")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    name = backup.stdout.split()[1].rstrip(":")
    assert (node.root / "var/backups/voedger" / name / "backup.json").is_file()
    later = api.write(5)
    for record in first[:4]:
        api.deactivate(record)
    assert (api.read(first[0]) or {}).get("sys.IsActive") is False

    listed = ctool(folder, "backup", "list")
    assert listed.returncode == 0 and name in listed.stdout and "1/1" in listed.stdout, listed.stdout

    restored = ctool(folder, "restore", name)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    api = appclient.Client([url], appclient.system_token(storage))
    for record in first:
        read = api.read(record)
        assert read is not None and read["Token"] == record.token and read["sys.IsActive"] is True, read
    for record in later:
        assert api.read(record) is None
    data = cluster_json(folder)
    assert "Cmd" not in data and data["ActualClusterVersion"] == NEW_VERSION
    assert list((node.root / "var/backups/voedger").glob("replaced-*/sqlite/*.db"))

    # --expire removes the backups older than the duration, never the new one.
    time.sleep(2)
    newer = ctool(folder, "backup", "now", "--expire", "1s")
    assert newer.returncode == 0, newer.stdout + newer.stderr
    assert f"expired, removed: {name}" in newer.stdout
    assert not (node.root / "var/backups/voedger" / name).exists()
    bad = ctool(folder, "restore", name)
    assert bad.returncode == 1 and f"no backup {name}" in bad.stderr
    wrong = ctool(folder, "backup", "now", "--expire", "7 days")
    assert wrong.returncode == 1 and "is not a duration" in wrong.stderr

    # backup cron: the cron.d file's command, run by /bin/sh as cron runs it (no cron daemon
    # here), makes a backup of the node with --expire, and backup list shows it.
    from voedger.ctool import cron

    cron_dir = short_tmp / "cron.d"
    scheduled = ctool(folder, "backup", "cron", "*/5 * * * *", "--expire", "1d", "--cron-dir", str(cron_dir))
    assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
    assert cluster_json(folder)["Cron"]["Backup"] == "*/5 * * * *"
    line = (cron_dir / cron.FILE_NAME).read_text().splitlines()[-1]
    _schedule, _user, command = cron.cron_command(line)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "SHELL": "/bin/sh",
        "HOME": str(Path.home()),
    }
    subprocess.run(["/bin/sh", "-c", command], env=env, cwd="/", timeout=400, check=True)
    ran = (folder / cron.LOG_FILE).read_text()
    assert ran.startswith("backup ") and "n1-node" in ran, ran
    by_cron = ran.split()[1].rstrip(":")
    listed = ctool(folder, "backup", "list")
    assert listed.returncode == 0 and by_cron in listed.stdout, listed.stdout
    removed = ctool(folder, "backup", "cron", "--remove")
    assert removed.returncode == 0 and not (cron_dir / cron.FILE_NAME).exists()
