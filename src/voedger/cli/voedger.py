"""``voedger``: the server and its storage utilities."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from voedger import __version__, logs
from voedger.storage import StorageError, open_storage

if TYPE_CHECKING:
    from voedger.auth.keystore import ClusterKeys
    from voedger.federation.store import DirectoryStore
    from voedger.storage.contract import AppStorage


@click.group()
@click.version_option(__version__, prog_name="voedger")
def main() -> None:
    """The Voedger platform server."""


@main.command()
@click.option("--data-dir", default="./.voedger", show_default=True, help="Where embedded storage lives.")
@click.option("--storage", "storage_url", default=None, help="Storage URL (default: SQLite in --data-dir).")
@click.option("--port", default=8822, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--app", "apps", multiple=True, help="owner/name=DIR, or owner/name=IMAGE.var (vpm build), repeatable.")
@click.option("--insecure-dev", is_flag=True, help="Let requests through without tokens (development only).")
@click.option(
    "--federation-url",
    default=None,
    help="Where calls between applications go, with system tokens (default: this server, in-process).",
)
@click.option("--smtp-url", default=None, help="smtp://[user:password@]host[:port]/?from=addr: where mail goes.")
@click.option(
    "--secrets-dir",
    envvar="SECRET_ROOT",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="A folder whose files extensions read by name as sys.AppSecret (Voedger's SECRET_ROOT).",
)
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
    "--admin-port",
    default=None,
    type=click.IntRange(min=0, max=65535),
    help="Also serve the API on this port of 127.0.0.1 only, without TLS, for the host's own "
    "scripts (Voedger's admin endpoint, its port 55555).",
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
    "--cluster-reads",
    type=click.Choice(["owner", "here"]),
    default="owner",
    show_default=True,
    help="Where a cluster process serves a read of a partition another process owns: 'owner' sends "
    "it to the owner, which keeps the rows its reads found (served here if the owner does not "
    "answer within a second); 'here' reads the shared storage itself.",
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
    "--cluster-id",
    default=1,
    show_default=True,
    type=click.IntRange(min=1, max=0xFFFF),
    help="This cluster's ID in its federation (1: the main cluster); the cluster bits of the WSIDs it makes.",
)
@click.option(
    "--federated",
    is_flag=True,
    help="Serve as the main cluster of a federation: keep its directory, route WSIDs of other clusters there.",
)
@click.option(
    "--main",
    "main_url",
    default=None,
    help="A worker cluster of a federation: a router of the main cluster (its internal URL).",
)
@click.option(
    "--federation-secret-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A worker's copy of the federation secret (`voedger federation secret`), readable by the server alone.",
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
@click.option(
    "--http-front",
    type=click.Choice(["builtin", "uvicorn", "hypercorn"]),
    default="builtin",
    show_default=True,
    help="The HTTP server: the built-in one (HTTP/1.1, every edge limit), uvicorn (a known-good fallback) "
    "or Hypercorn (HTTP/2 too: ALPN h2 with --tls-cert, else h2c); the fallbacks keep fewer limits (README).",
)
@click.option(
    "--acme-domain",
    "acme_domains",
    multiple=True,
    help="Serve HTTPS on --port with a certificate for this domain, ordered by ACME (HTTP-01), kept in the "
    "cluster's storage and renewed automatically; repeatable (one certificate for all). Not with --tls-cert.",
)
@click.option(
    "--acme-directory",
    default=None,
    help="The ACME CA's directory URL [default: Let's Encrypt's production one].",
)
@click.option("--acme-ca-bundle", default=None, help="PEM CA certificates that verify the ACME CA's own HTTPS.")
@click.option("--acme-email", default=None, help="Contact address of the ACME account.")
@click.option(
    "--acme-http-port",
    default=None,
    type=click.IntRange(min=1, max=65535),
    help="Port of --host that answers the CA's HTTP-01 challenges (/.well-known/acme-challenge/) [default: 80].",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1, max=256),
    help="Processes serving --port together (SO_REUSEPORT), one per core, on embedded SQLite: this one writes "
    "(commands, sign-in, projectors, jobs); the N-1 it starts serve reads from the files and send it the rest.",
)
@click.option(
    "--internal-port",
    default=None,
    type=click.IntRange(min=1, max=65535),
    help="With --processes: the port of --host where this process alone answers (the readers forward to it); "
    "reader i answers alone on this port + i [default: --port + 1].",
)
@click.option("--reader-of", "reader_of", default=None, hidden=True, help="Serve as a reader process of this writer.")
def server(
    data_dir: str,
    storage_url: str | None,
    port: int,
    host: str,
    apps: tuple[str, ...],
    insecure_dev: bool,
    federation_url: str | None,
    smtp_url: str | None,
    secrets_dir: str | None,
    max_queries_per_ws: int,
    metrics_port: int | None,
    admin_port: int | None,
    advertise: str | None,
    lease_ttl: int,
    cluster_reads: str,
    blob_max_size: int,
    max_connections: int,
    read_timeout: float,
    cluster_id: int,
    federated: bool,
    main_url: str | None,
    federation_secret_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    acme_domains: tuple[str, ...],
    acme_directory: str | None,
    acme_ca_bundle: str | None,
    acme_email: str | None,
    acme_http_port: int | None,
    log_format: str,
    access_log: bool,
    http_front: str,
    processes: int,
    internal_port: int | None,
    reader_of: str | None,
) -> None:
    """Run a server process serving the given applications: alone, in a cluster of processes on
    shared storage, or in a cluster of a federation."""
    from starlette.types import ASGIApp

    from voedger.router import http
    from voedger.router.access import CountRequests
    from voedger.router.accesslog import AccessLog
    from voedger.router.app import MAX_FRAME
    from voedger.router.blobs import is_upload
    from voedger.router.fronts import front_class
    from voedger.router.server import make_asgi
    from voedger.storage import parse_storage_url
    from voedger.vvm.image import ImageError, load_image
    from voedger.vvm.server import ServerConfig

    logs.configure("json" if log_format == "json" else "text")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per forwarded request otherwise
    url = storage_url or f"sqlite://{Path(data_dir).resolve()}"
    several = processes > 1 or reader_of is not None
    try:
        parsed_url = parse_storage_url(url)
        if several:
            _check_processes(parsed_url, http_front, acme_domains, federated or bool(main_url) or cluster_id != 1)
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
    federation = None
    if federated or main_url or cluster_id != 1 or federation_secret_file:
        from voedger.federation.server import FederationConfig

        try:
            federation = FederationConfig(main_url, *_worker_secret(cluster_id, main_url, federation_secret_file))
        except click.BadParameter as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
    config = ServerConfig(
        storage_url=url,
        cluster_id=cluster_id,
        federated=federation is not None,
        apps=parsed,
        insecure_dev=insecure_dev,
        federation_url=federation_url,
        mailer=mailer,
        secrets_dir=Path(secrets_dir).resolve() if secrets_dir else None,
        max_queries_per_ws=max_queries_per_ws,
        advertise=(advertise or f"http://{host}:{port}").rstrip("/"),
        lease_ttl=lease_ttl,
        reads_at_owner=cluster_reads == "owner",
        blob_max_size=blob_max_size,
        reader=reader_of is not None,
        # In a cluster the process listens first and takes its partitions after (``join`` below):
        # the others can forward to it the moment it owns one; /api/check says 503 meanwhile.
        join_later=True,
    )
    acme_flags = acme_directory or acme_ca_bundle or acme_email or acme_http_port is not None
    acme = None
    if acme_domains or acme_flags:
        from voedger.certificates.server import AcmeSetup

        try:
            acme = AcmeSetup.from_flags(
                acme_domains,
                directory=acme_directory,
                ca_bundle=acme_ca_bundle,
                email=acme_email,
                http_port=acme_http_port,
                tls_given=bool(tls_cert or tls_key),
                taken_ports={port: "--port", **({metrics_port: "--metrics-port"} if metrics_port is not None else {})},
            )
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
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
    if acme is not None:
        tls = acme.served.context
    internal = internal_port if internal_port is not None else port + 1
    local_host = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    readers = None
    if reader_of is not None:
        from voedger.router.server import make_reader_asgi

        asgi, vvm = make_reader_asgi(config, reader_of, me=f"http://{local_host}:{internal}")
    elif federation is not None:
        from voedger.federation.server import make_federated_asgi

        asgi, vvm, federated_parts = make_federated_asgi(config, federation)
    else:
        from voedger.cli.reader_processes import ReaderProcesses, reader_command

        writer_url = f"http://{local_host}:{internal}"
        reader_urls = [f"http://{local_host}:{internal + i}" for i in range(1, processes)]
        readers = ReaderProcesses([reader_command(sys.argv[1:], writer_url, internal + i) for i in range(1, processes)])
        asgi, vvm = make_asgi(config, readers=reader_urls)
    front: ASGIApp = CountRequests(asgi, vvm.http)  # voedger_http_requests_total
    if access_log:
        front = AccessLog(front)
    extra = []
    if several:
        from voedger.router.server import without_lifespan

        extra.append((without_lifespan(front), host, internal))
    if admin_port is not None and reader_of is None:
        from voedger.router.server import without_lifespan

        extra.append((without_lifespan(front), "127.0.0.1", admin_port))
    if metrics_port is not None and reader_of is None:
        from voedger.metrics import metrics_app

        # Voedger's VVM name is the host's name (one VVM a host); processes of a cluster that
        # share a host are told apart by their port.
        name = socket.gethostname() if advertise is None else f"{socket.gethostname()}:{port}"
        if federation is not None:
            from voedger.federation.metrics import FederationCollector, federation_route

            served = metrics_app(
                vvm, name, [FederationCollector(federated_parts, name)], [federation_route(federated_parts)]
            )
        else:
            served = metrics_app(vvm, name)
        extra.append((served, host, metrics_port))
    after_start: Callable[[], Awaitable[None]] = vvm.join
    before_stop: Callable[[], Awaitable[None]] = vvm.leave
    if acme is not None:
        extra.append((acme.responder.app, host, acme.http_port))
        acme_start, before_stop = acme.hooks(vvm)

        async def after_start() -> None:
            await acme_start()
            await vvm.join()

    if reader_of is not None:
        from voedger.cli.reader_processes import watch_parent

        async def watch() -> None:
            asyncio.get_running_loop().create_task(watch_parent(), name="watch-parent")

        after_start = watch  # a reader owns no partition: nothing to join
    elif readers is not None and processes > 1:
        join = after_start

        async def join_then_start_readers() -> None:
            await join()
            await readers.start()

        after_start = join_then_start_readers
        leave = before_stop

        async def stop_readers_then_leave() -> None:
            await readers.stop()  # what they forward still reaches this process meanwhile
            await leave()

        before_stop = stop_readers_then_leave
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
            before_stop=before_stop,
            after_start=after_start,
            read_timeout=read_timeout,
            max_connections=max_connections,
            tls=tls,
            listeners=vvm.http.listeners,  # voedger_http_connections
            front=front_class(http_front),
            reuse_port=several,
        )
    except http.LifespanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    except OSError as exc:
        others = [f"{metrics_port} (metrics)"] if metrics_port is not None else []
        if admin_port is not None:
            others.append(f"{admin_port} (admin, on 127.0.0.1)")
        if acme is not None:
            others.append(f"{acme.http_port} (ACME challenges)")
        ports = f"{port} (API) or {', '.join(others)}" if others else f"{port}"
        click.echo(f"error: cannot listen on {host}, port {ports}: {exc}", err=True)
        sys.exit(3)


def _check_processes(url: object, http_front: str, acme_domains: tuple[str, ...], federated: bool) -> None:
    """What ``--processes`` needs: an embedded store, the built-in front, no ACME, no federation."""
    from voedger.storage.url import SQLiteURL

    if not isinstance(url, SQLiteURL):
        raise click.BadParameter("--processes serves an embedded SQLite store; processes of a cluster share Cassandra")
    if http_front != "builtin":
        raise click.BadParameter("--processes needs the built-in HTTP front (--http-front builtin)")
    if acme_domains:
        raise click.BadParameter("--processes and --acme-domain do not go together yet")
    if federated:
        raise click.BadParameter("--processes does not serve a cluster of a federation yet")


def _worker_secret(cluster_id: int, main_url: str | None, secret_file: str | None) -> tuple[bytes | None]:
    """The federation secret of a worker cluster, read from its file; None for the main cluster."""
    if cluster_id == 1:
        if main_url or secret_file:
            raise click.BadParameter(
                "the main cluster (--cluster-id 1) takes neither --main nor --federation-secret-file"
            )
        return (None,)
    if not main_url or not secret_file:
        raise click.BadParameter(f"cluster {cluster_id} is a worker: it needs --main and --federation-secret-file")
    from voedger.federation.secretfile import read_secret_file

    try:
        return (read_secret_file(Path(secret_file)),)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_app(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not directory:
        raise click.BadParameter(f"--app {text!r} must be owner/name=DIR or owner/name=IMAGE.var")
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


@main.group()
def federation() -> None:
    """The federation directory, kept by the main cluster: which clusters exist and where.

    Each command works on the main cluster's storage (--storage, as its servers were given it):
    whoever may change that storage may change the federation. Routers see a change within
    seconds.
    """


_MAIN_STORAGE = click.option(
    "--storage",
    "storage_url",
    required=True,
    help="The main cluster's storage URL (sqlite://DIR or cassandra://...), as its servers use it.",
)


def _on_vvm_storage(storage_url: str, work: Callable[[AppStorage], Awaitable[str]], *, create: bool = False) -> None:
    """Run ``work`` on the ``sys/vvm`` storage of a cluster's storage (opened as a tool, not as
    a server) and print what it returns; a mistake or an unreachable storage: its message, exit 1.
    A SQLite data directory that does not exist is made only if ``create`` (setting up a main
    cluster before its servers first start); else it is refused (a mistyped path)."""
    from voedger.auth.errors import SecretStoreError
    from voedger.federation.directory import DirectoryError
    from voedger.vvm.server import VVM_APP

    async def run() -> str:
        from voedger.storage.url import SQLiteURL, parse_storage_url

        parsed = parse_storage_url(storage_url)
        if isinstance(parsed, SQLiteURL) and not create and not parsed.directory.is_dir():
            raise ValueError(f"{parsed.directory} is no data directory: start a server on it once first")
        provider = open_storage(storage_url)
        try:
            await provider.open(server=False)
            return await work(await provider.app_storage(VVM_APP))
        finally:
            await provider.close()

    try:
        click.echo(asyncio.run(run()))
    except KeyError as exc:  # a key ID the key set does not hold
        click.echo(f"error: {exc.args[0]}", err=True)
        sys.exit(1)
    except (StorageError, DirectoryError, SecretStoreError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _with_directory_store(
    storage_url: str, work: Callable[[DirectoryStore], Awaitable[str]], *, create: bool = False
) -> None:
    from voedger.federation.store import DirectoryStore

    async def on_storage(storage: AppStorage) -> str:
        return await work(DirectoryStore(storage))

    _on_vvm_storage(storage_url, on_storage, create=create)


@federation.command("add-cluster")
@_MAIN_STORAGE
@click.option("--id", "cluster_id", required=True, type=click.IntRange(min=1, max=0xFFFF), help="The cluster's ID.")
@click.option("--name", required=True, help="A unique name (letters, digits, _ . -).")
@click.option("--region", required=True, help="Where it runs (e.g. eu-west).")
@click.option("--public-url", required=True, help="Where clients reach its routers.")
@click.option("--internal-url", required=True, help="Where other clusters' routers forward requests to.")
def add_cluster(storage_url: str, cluster_id: int, name: str, region: str, public_url: str, internal_url: str) -> None:
    """Add a cluster, or change the one with this ID (its keys stay)."""
    from voedger.federation.directory import ClusterEntry, Directory

    def step(d: Directory) -> Directory:
        old = d.get(cluster_id)
        keys = old.keys if old is not None else ()
        return d.with_cluster(
            ClusterEntry(cluster_id, name, region, public_url.rstrip("/"), internal_url.rstrip("/"), keys)
        )

    async def work(store: DirectoryStore) -> str:
        d = await store.change(step)
        return f"cluster {cluster_id} ({name}, {region}) is in the directory, version {d.version}"

    _with_directory_store(storage_url, work, create=True)


@federation.command("remove-cluster")
@_MAIN_STORAGE
@click.option("--id", "cluster_id", required=True, type=click.IntRange(min=1, max=0xFFFF))
def remove_cluster(storage_url: str, cluster_id: int) -> None:
    """Remove a cluster: its workspaces answer 400 everywhere afterwards (their data stays where it is)."""

    async def work(store: DirectoryStore) -> str:
        d = await store.change(lambda d: d.without_cluster(cluster_id))
        return f"cluster {cluster_id} is no longer in the directory, version {d.version}"

    _with_directory_store(storage_url, work)


@federation.command("list")
@_MAIN_STORAGE
@click.option("--json", "as_json", is_flag=True, help="The directory as JSON.")
def list_clusters(storage_url: str, as_json: bool) -> None:
    """The clusters of the federation."""

    async def work(store: DirectoryStore) -> str:
        d = await store.load()
        if as_json:
            return d.to_bytes().decode()
        lines = [f"directory version {d.version}, {len(d.clusters)} cluster(s)"]
        for c in sorted(d.clusters.values(), key=lambda c: c.id):
            lines.append(f"{c.id:>5}  {c.name:<16} {c.region:<12} {c.public_url}  (internal {c.internal_url})")
        return "\n".join(lines)

    _with_directory_store(storage_url, work)


@federation.command("secret")
@_MAIN_STORAGE
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="A new file (mode 0600) for the secret, to give to a worker cluster's servers.",
)
def secret(storage_url: str, out: str) -> None:
    """Write the federation secret (created on first use) to a new file, for a worker cluster."""
    from voedger.federation.secretfile import write_secret_file
    from voedger.federation.store import federation_secret

    async def work(store: DirectoryStore) -> str:
        value = await federation_secret(store.storage)
        try:
            write_secret_file(Path(out), value)
        except FileExistsError:
            raise ValueError(f"{out} exists; the secret is written to a new file only") from None
        return f"the federation secret is in {out} (mode 0600)"

    _with_directory_store(storage_url, work, create=True)


@main.group()
def keys() -> None:
    """The cluster's token-signing keys (Ed25519), kept in its storage.

    A rotation without downtime: `stage` a new key (published and verifying, not signing yet),
    wait until every cluster of the federation lists it (`voedger federation list`; seconds),
    `activate` it, and `remove` the old one once the tokens it signed have expired (at most
    168 h). The servers pick changes up within about 10 s.
    """


async def _cluster_keys(storage: AppStorage, cluster_id: int) -> ClusterKeys:
    from voedger.auth.keystore import ClusterKeys, StorageKeySetStore

    store = StorageKeySetStore(storage)
    if await store.load() is None:
        raise ValueError("this storage keeps no keys yet: start a server on it once first")
    return await ClusterKeys.open(store, cluster_id)


def _with_keys(storage_url: str, cluster_id: int, work: Callable[[ClusterKeys], Awaitable[str]]) -> None:
    async def on_storage(storage: AppStorage) -> str:
        return await work(await _cluster_keys(storage, cluster_id))

    _on_vvm_storage(storage_url, on_storage)


_KEYS_STORAGE = click.option("--storage", "storage_url", required=True, help="The cluster's storage URL.")
_KEYS_CLUSTER = click.option(
    "--cluster-id", default=1, show_default=True, type=click.IntRange(min=1, max=0xFFFF), help="The cluster's ID."
)


@main.group()
def token() -> None:
    """Tokens an operator needs, signed with the cluster's keys (read from its storage)."""


@token.command("system")
@_KEYS_STORAGE
@_KEYS_CLUSTER
@click.option("--app", "app", default="sys/cluster", show_default=True, help="The application the token is for.")
def token_system(storage_url: str, cluster_id: int, app: str) -> None:
    """Print a System principal's token for APP (10 minutes), e.g. for `vpm deploy`."""
    from voedger.auth import JWT_SECRET_NAME, StorageSecretStore, Tokens

    async def work(storage: AppStorage) -> str:
        secret = await StorageSecretStore(storage).read(JWT_SECRET_NAME)
        if secret is None:
            raise ValueError("this storage keeps no JWT secret yet: start a server on it once first")
        return Tokens(secret, keys=await _cluster_keys(storage, cluster_id)).issue_system(app)

    _on_vvm_storage(storage_url, work)


@keys.command("list")
@_KEYS_STORAGE
@_KEYS_CLUSTER
def keys_list(storage_url: str, cluster_id: int) -> None:
    """The keys, the signing one marked."""

    async def work(k: ClusterKeys) -> str:
        import datetime as dt

        lines = []
        for kid in k.kids():
            made = dt.datetime.fromtimestamp(k.created_at(kid), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            lines.append(f"{'*' if kid == k.signing.kid else ' '} {kid}  made {made}")
        return "\n".join(lines)

    _with_keys(storage_url, cluster_id, work)


@keys.command("stage")
@_KEYS_STORAGE
@_KEYS_CLUSTER
def keys_stage(storage_url: str, cluster_id: int) -> None:
    """Make a new key that verifies (and is published) but does not sign yet."""

    async def work(k: ClusterKeys) -> str:
        return f"staged {await k.stage()}: activate it once every cluster lists it"

    _with_keys(storage_url, cluster_id, work)


@keys.command("activate")
@_KEYS_STORAGE
@_KEYS_CLUSTER
@click.argument("kid")
def keys_activate(storage_url: str, cluster_id: int, kid: str) -> None:
    """Sign new tokens with the key KID."""

    async def work(k: ClusterKeys) -> str:
        await k.activate(kid)
        return f"{kid} signs new tokens"

    _with_keys(storage_url, cluster_id, work)


@keys.command("remove")
@_KEYS_STORAGE
@_KEYS_CLUSTER
@click.argument("kid")
def keys_remove(storage_url: str, cluster_id: int, kid: str) -> None:
    """Remove the key KID: the tokens it signed stop verifying."""

    async def work(k: ClusterKeys) -> str:
        await k.remove(kid)
        return f"{kid} is removed"

    _with_keys(storage_url, cluster_id, work)


if __name__ == "__main__":
    main()
