"""Installs Debian packages the development tools need, once: ``dpkg-query`` first, then apt.

Used by the monitoring tools (Prometheus, Alertmanager, Chromium). Idempotent: a package that is
installed already costs one ``dpkg-query``. Services the packages ship are not started by this
module (a container's ``policy-rc.d`` usually forbids it anyway); the tools run the binaries
themselves with configurations of their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence


class DebianPackageError(RuntimeError):
    """A package could not be installed; the message holds apt's last lines."""


def installed(package: str) -> bool:
    """Whether dpkg lists ``package`` as installed."""
    if shutil.which("dpkg-query") is None:
        return False
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == "install ok installed"


def _apt(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise DebianPackageError("installing packages needs root or sudo")
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        [*prefix, "apt-get", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=False
    )


def ensure_packages(packages: Sequence[str]) -> list[str]:
    """Install the packages of ``packages`` that are missing; returns the ones it installed.

    Tries without refreshing apt's lists first, then once more after ``apt-get update``.
    """
    missing = [p for p in packages if not installed(p)]
    if not missing:
        return []
    if shutil.which("apt-get") is None:
        raise DebianPackageError(f"apt-get is not available to install {', '.join(missing)}")
    args = ["install", "-y", "-q", "--no-install-recommends", *missing]
    done = _apt(args)
    if done.returncode != 0:
        _apt(["update", "-q"])
        done = _apt(args)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise DebianPackageError(f"apt-get could not install {', '.join(missing)}:\n" + "\n".join(tail))
    still = [p for p in missing if not installed(p)]
    if still:
        raise DebianPackageError(f"apt-get finished but {', '.join(still)} is not installed")
    return missing
