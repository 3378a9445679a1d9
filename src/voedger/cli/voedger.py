"""``voedger``: the server and its storage utilities."""

from __future__ import annotations

import asyncio
import sys

import click

from voedger import __version__
from voedger.cli.common import not_built
from voedger.storage import StorageError, open_storage


@click.group()
@click.version_option(__version__, prog_name="voedger")
def main() -> None:
    """The Voedger platform server."""


@main.command()
@click.option("--data-dir", default="./.voedger", show_default=True, help="Where embedded storage lives.")
@click.option("--storage", "storage_url", default=None, help="Storage URL (default: SQLite in --data-dir).")
@click.option("--port", default=8822, show_default=True, type=int)
@click.option("--app", "apps", multiple=True, help="owner/name=DIR, repeatable.")
@click.option("--insecure-dev", is_flag=True, help="Let requests through without tokens (development only).")
def server(
    data_dir: str, storage_url: str | None, port: int, apps: tuple[str, ...], insecure_dev: bool
) -> None:
    """Run a single-node platform serving the given applications."""
    not_built("voedger server", "the event-sourced core and HTTP API")


@main.command("storage-check")
@click.argument("url")
@click.option("--app", default="sys/check", show_default=True, help="Application whose storage to open.")
def storage_check(url: str, app: str) -> None:
    """Open URL's storage, write and read back one row, and say what the driver can do."""

    async def run() -> str:
        provider = open_storage(url)
        try:
            storage = await provider.app_storage(app)
            await storage.put(b"storage-check", b"", b"ok")
            value = await storage.get(b"storage-check", b"")
            if value != b"ok":
                raise StorageError("a row written was not read back")
            return f"{provider.capabilities.name}: {app} storage works ({provider.capabilities})"
        finally:
            await provider.close()

    try:
        click.echo(asyncio.run(run()))
    except StorageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
