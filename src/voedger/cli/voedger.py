"""``voedger``: the server and its storage utilities."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path

import click

from voedger import __version__, logs
from voedger.storage import StorageError, open_storage


@click.group()
@click.version_option(__version__, prog_name="voedger")
def main() -> None:
    """The Voedger platform server."""


@main.command()
@click.option("--data-dir", default="./.voedger", show_default=True, help="Where embedded storage lives.")
@click.option("--storage", "storage_url", default=None, help="Storage URL (default: SQLite in --data-dir).")
@click.option("--port", default=8822, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--app", "apps", multiple=True, help="owner/name=DIR, repeatable.")
@click.option("--insecure-dev", is_flag=True, help="Let requests through without tokens (development only).")
@click.option(
    "--federation-url",
    default=None,
    help="Where calls between applications go, with system tokens (default: this server, in-process).",
)
@click.option("--smtp-url", default=None, help="smtp://[user:password@]host[:port]/?from=addr: where mail goes.")
@click.option(
    "--max-queries-per-ws",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Reads of one workspace running at once; more answer 503 with Retry-After (0: no limit).",
)
@click.option(
    "--metrics-port",
    default=None,
    type=click.IntRange(min=0, max=65535),
    help="Serve the voedger_* metrics (GET /metrics, /metrics/check) on this port of --host (Voedger: 8000).",
)
@click.option(
    "--advertise",
    default=None,
    help="This process's URL for requests the other processes of its cluster forward to it "
    "(default: http://HOST:PORT). Shared storage (Cassandra) only.",
)
@click.option(
    "--lease-ttl",
    default=6,
    show_default=True,
    type=click.IntRange(min=2, max=300),
    help="Seconds a partition lease lives unrenewed: how soon the partitions of a dead process serve elsewhere.",
)
@click.option(
    "--blob-max-size",
    type=click.IntRange(min=0),
    default=20 * 1024 * 1024,
    show_default=True,
    help="Bytes a BLOB may have (Voedger's BLOBMaxSize); a larger upload answers 413.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Client connections served at once (Voedger's connections limit); more are answered 503 and closed.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds from a request's first byte until its head and body must have arrived; else 408 (Voedger: 15).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as plain text or as JSON objects, one a line; tokens and passwords are masked in both.",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every HTTP request: method, path, app, WSID, resource, status, duration (no headers, bodies or queries).",
)
@click.option("--tls-cert", default=None, help="PEM certificate chain: serve HTTPS (TLS 1.2 or newer) on --port.")
@click.option("--tls-key", default=None, help="PEM private key of --tls-cert.")
def server(
    data_dir: str,
    storage_url: str | None,
    port: int,
    host: str,
    apps: tuple[str, ...],
    insecure_dev: bool,
    federation_url: str | None,
    smtp_url: str | None,
    max_queries_per_ws: int,
    metrics_port: int | None,
    advertise: str | None,
    lease_ttl: int,
    blob_max_size: int,
    max_connections: int,
    read_timeout: float,
    tls_cert: str | None,
    tls_key: str | None,
    log_format: str,
    access_log: bool,
) -> None:
    """Run a single-node platform serving the given applications."""
    from starlette.types import ASGIApp

    from voedger.router import http
    from voedger.router.access import CountRequests
    from voedger.router.accesslog import AccessLog
    from voedger.router.app import MAX_FRAME
    from voedger.router.blobs import is_upload
    from voedger.router.server import make_asgi
    from voedger.storage import parse_storage_url
    from voedger.vvm.image import ImageError, load_image
    from voedger.vvm.server import ServerConfig

    logs.configure("json" if log_format == "json" else "text")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per forwarded request otherwise
    url = storage_url or f"sqlite://{Path(data_dir).resolve()}"
    try:
        parse_storage_url(url)
        parsed = [_parse_app(a) for a in apps]
        for name, directory in parsed:
            load_image(name, directory)  # fail before serving, with every problem named
    except (StorageError, ImageError, click.BadParameter) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if insecure_dev:
        banner = "!" * 78
        click.echo(
            f"{banner}\n  --insecure-dev: requests are accepted WITHOUT tokens and every ACL check passes.\n"
            f"  Never use it outside development.\n{banner}",
            err=True,
        )
    mailer = None
    if smtp_url:
        from voedger.apps.sys.mail import SmtpMailer

        try:
            mailer = SmtpMailer.from_url(smtp_url)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    config = ServerConfig(
        storage_url=url,
        apps=parsed,
        insecure_dev=insecure_dev,
        federation_url=federation_url,
        mailer=mailer,
        max_queries_per_ws=max_queries_per_ws,
        advertise=(advertise or f"http://{host}:{port}").rstrip("/"),
        lease_ttl=lease_ttl,
        blob_max_size=blob_max_size,
    )
    tls = None
    if tls_cert or tls_key:
        import ssl

        if not (tls_cert and tls_key):
            click.echo("error: --tls-cert and --tls-key go together", err=True)
            sys.exit(2)
        try:
            tls = http.tls_context(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            click.echo(f"error: cannot use the TLS certificate and key: {exc}", err=True)
            sys.exit(2)
    asgi, vvm = make_asgi(config)
    front: ASGIApp = CountRequests(asgi, vvm.http)  # voedger_http_requests_total
    if access_log:
        front = AccessLog(front)
    extra = []
    if metrics_port is not None:
        from voedger.metrics import metrics_app

        extra.append((metrics_app(vvm, socket.gethostname()), host, metrics_port))
    try:
        # A body larger than a forwarded request's frame is not read; one the router refuses, refused there.
        # BLOB uploads are streamed to the router, which keeps to --blob-max-size itself.
        http.run(
            front,
            host,
            port,
            max_body=MAX_FRAME,
            extra=extra,
            stream=is_upload,
            before_stop=vvm.leave,
            read_timeout=read_timeout,
            max_connections=max_connections,
            tls=tls,
            listeners=vvm.http.listeners,  # voedger_http_connections
        )
    except http.LifespanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    except OSError as exc:
        ports = f"{port}" if metrics_port is None else f"{port} (API) or {metrics_port} (metrics)"
        click.echo(f"error: cannot listen on {host}, port {ports}: {exc}", err=True)
        sys.exit(3)


def _parse_app(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not directory:
        raise click.BadParameter(f"--app {text!r} must be owner/name=DIR")
    return name, Path(directory)


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


if __name__ == "__main__":
    main()
