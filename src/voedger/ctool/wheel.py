"""The server's wheel that ctool installs: built from this checkout, or given with ``--wheel``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from voedger import __version__


class WheelError(RuntimeError):
    """No wheel of the server could be had; the message says what to do."""


def project_root() -> Path | None:
    """The checkout this ctool runs from (pyproject.toml beside src/voedger), if it is one."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "voedger").is_dir():
            return folder
    return None


def build(dest: Path) -> Path:
    """``pip wheel`` of the checkout into ``dest`` (no dependencies: the node fetches them)."""
    root = project_root()
    if root is None:
        raise WheelError("ctool does not run from a checkout of the server: give the server's wheel with --wheel")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ctool-wheel-") as tmp:
        # From a clean copy of the sources: a checkout's build/ may hold a native build's objects.
        source = Path(tmp) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "setup.py", "README.md"):
            shutil.copy2(root / name, source / name)
        shutil.copytree(
            root / "src",
            source / "src",
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", "*.pyc"),
        )
        out = Path(tmp) / "out"
        env = {k: v for k, v in os.environ.items() if k != "VOEDGER_NATIVE"}
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), "."],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        wheels = list(out.glob("voedger-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise WheelError(f"pip wheel of {root} failed:\n{(done.stdout + done.stderr).strip()[-2000:]}")
        return Path(shutil.copy2(wheels[0], dest / wheels[0].name))


def adopt(wheel: Path, dest: Path) -> Path:
    """Copy a given wheel beside cluster.json (a repeat must find it), checking its version."""
    if not wheel.is_file() or not wheel.name.startswith("voedger-") or wheel.suffix != ".whl":
        raise WheelError(f"{wheel} is not a wheel of the server (voedger-<version>-....whl)")
    version = wheel.name.split("-")[1]
    if version != __version__:
        raise WheelError(f"{wheel.name} is version {version}, this ctool installs {__version__}")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel.name
    if wheel.resolve() != target.resolve():
        shutil.copy2(wheel, target)
    return target
