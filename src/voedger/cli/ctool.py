"""``ctool``: installs and operates clusters."""

from __future__ import annotations

import click

from voedger import __version__
from voedger.cli.common import not_built


@click.group()
@click.version_option(__version__, prog_name="ctool")
def main() -> None:
    """Install and operate Voedger clusters."""


@main.command(hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def init() -> None:
    """Initialise a cluster (CE or SE)."""
    not_built("ctool init", "the cluster tooling")


@main.command(hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def validate() -> None:
    """Validate cluster.json."""
    not_built("ctool validate", "the cluster tooling")
