"""The server's wheel that ctool installs: built from this checkout, or given with ``--wheel``."""

from __future__ import annotations

import os
import re
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


def version_of(wheel: Path) -> str:
    """The version a wheel's file name carries (``voedger-<version>-...whl``)."""
    return wheel.name.split("-")[1]


def public(version: str) -> str:
    """A version without its local label (PEP 440): ``0.1.0+hotfix1`` is a build of ``0.1.0``."""
    return version.split("+")[0]


def build(dest: Path, version: str | None = None) -> Path:
    """``pip wheel`` of the checkout into ``dest`` (no dependencies: the node fetches them).

    ``version``, if given, is written into the copy that is built (pyproject.toml and
    ``voedger.__version__``): it must be this checkout's version with a local label, such as
    ``0.1.0+hotfix1``, a build of the same release that an upgrade can tell apart."""
    if version is not None and (public(version) != __version__ or not re.fullmatch(r"[0-9.]+\+[a-z0-9.]+", version)):
        raise WheelError(f"{version!r} is not {__version__} with a local label (such as {__version__}+hotfix1)")
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
        if version is not None:
            for name, pattern, line in (
                ("pyproject.toml", r'(?m)^version = ".*"$', f'version = "{version}"'),
                ("src/voedger/__init__.py", r'(?m)^__version__ = ".*"$', f'__version__ = "{version}"'),
            ):
                path = source / name
                text, count = re.subn(pattern, line, path.read_text(), count=1)
                if count != 1:
                    raise WheelError(f"no version line in {name} of {root}")
                path.write_text(text)
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
    version = version_of(wheel)
    if public(version) != __version__:
        raise WheelError(f"{wheel.name} is version {version}, this ctool installs {__version__} (or a build of it)")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel.name
    if wheel.resolve() != target.resolve():
        shutil.copy2(wheel, target)
    return target
