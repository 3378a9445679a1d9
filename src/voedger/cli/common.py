"""What the command-line tools share."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

NOT_BUILT_EXIT = 2


def not_built(what: str, issue: str) -> NoReturn:
    """Say plainly that a subcommand does not exist yet, instead of pretending."""
    click.echo(f"{what}: not built yet ({issue}).", err=True)
    sys.exit(NOT_BUILT_EXIT)
