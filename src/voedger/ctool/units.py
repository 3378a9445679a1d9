"""How a node's services run: supervisord programs, or systemd units where systemd is init.

The ``prepare`` step asks each node: where the node root is ``/`` and ``/run/systemd/system``
exists (systemd is the running init), the services are systemd units in ``/etc/systemd/system``;
otherwise (a test node confined to its folder, a host without systemd) programs of a supervisord
of ctool's own under the node root. cluster.json keeps the answer per node (``ServiceManager``).

The unit files are rendered from the playbooks' Jinja templates (``templates/*.service.j2``, the
``unit`` macro of ``templates/macros.j2``), by Ansible for the server and Cassandra and here for
the monitoring programs (whose files the monitoring step writes in one task); the server's
command line is one macro for both its supervisord program and its unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

SUPERVISORD = "supervisord"
SYSTEMD = "systemd"
MANAGERS = (SUPERVISORD, SYSTEMD)
UNITS_DIR = PurePosixPath("/etc/systemd/system")
"""Where ctool's units go: the host's, so only with the node root ``/``."""
PROGRAMS = ("cassandra", "voedger", "prometheus", "alertmanager", "node-exporter")
"""Every program ctool runs on a node (Cassandra: SE only), by its supervisord name."""


def unit_name(program: str) -> str:
    """The unit of a program: ``voedger.service`` for the server, ``voedger-<program>`` else
    (Debian's ``prometheus.service`` and the others are theirs, disabled by ctool)."""
    return "voedger.service" if program == "voedger" else f"voedger-{program}.service"


def unit_path(program: str) -> str:
    return str(UNITS_DIR / unit_name(program))


def templates_dir() -> Path:
    return Path(str(resources.files("voedger.ctool") / "playbooks" / "templates"))


def _environment() -> Any:
    """Jinja as Ansible's template module sets it up (trim_blocks, the trailing newline kept)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["basename"] = lambda p: PurePosixPath(str(p)).name
    return env


def render(template: str, variables: Mapping[str, Any]) -> str:
    """A template of ``playbooks/templates`` rendered with ``variables`` (as Ansible would)."""
    result: str = _environment().get_template(template).render(**variables)
    return result


def unit(name: str, description: str, exec_start: str, directory: str, stop_seconds: int, reload: bool = False) -> str:
    """A unit by the ``unit`` macro that the server's and Cassandra's templates use."""
    source = (
        "{% from 'macros.j2' import unit %}{{ unit(name, description, exec_start, directory, stop_seconds, reload) }}"
    )
    result: str = (
        _environment()
        .from_string(source)
        .render(
            name=name,
            description=description,
            exec_start=exec_start,
            directory=directory,
            stop_seconds=stop_seconds,
            reload=reload,
        )
    )
    return result
