"""The native build: with VOEDGER_NATIVE=1 (``make native``), mypyc compiles the modules on the
command path listed in pyproject.toml under [tool.voedger] native-modules; any other install is
plain Python. The same typed source serves both; see docs/design.md, "The native build"."""

import os
import tomllib

from setuptools import setup

ext_modules = []
if os.environ.get("VOEDGER_NATIVE") == "1":
    from mypyc.build import mypycify

    with open("pyproject.toml", "rb") as f:
        modules = tomllib.load(f)["tool"]["voedger"]["native-modules"]
    ext_modules = mypycify([f"src/{m.replace('.', '/')}.py" for m in modules], opt_level="3")

setup(ext_modules=ext_modules)
