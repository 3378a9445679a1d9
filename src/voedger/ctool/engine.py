"""The engine: runs ctool's playbooks (shipped in ``playbooks/``) on nodes with ansible-runner.

ctool decides which step runs on which node; this module turns one step into one
``ansible-playbook`` run over those nodes (in parallel, Ansible's forks), with key
authentication and host keys checked against the cluster's known_hosts, and reports every task
of every node to a listener (the progress display and the command's log) as it happens.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PLAYBOOKS = "playbooks"
NODE_PYTHON = "/usr/bin/python3"
"""The Python on the nodes that runs Ansible's modules and the server's virtual environment."""


class EngineError(RuntimeError):
    """Ansible could not be run at all (not installed, no playbook): no node was touched."""


@dataclass(frozen=True, slots=True)
class Target:
    """One node as the engine sees it."""

    name: str
    address: str
    node_root: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Connection:
    """How every node of the cluster is reached."""

    user: str
    port: int
    key: str
    known_hosts: str


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One thing the engine did or saw: ``kind`` is start, ok, changed, skipped, failed, unreachable."""

    step: str
    node: str
    task: str
    kind: str
    message: str = ""


@dataclass(slots=True)
class StepResult:
    """Per node, ``None`` if the step succeeded there, else what failed (task and message)."""

    failures: dict[str, str]
    outputs: dict[str, dict[str, Any]]
    unreachable: set[str]

    def ok(self, node: str) -> bool:
        return node not in self.failures


Listener = Callable[[TaskEvent], None]


def playbook_path(step: str) -> Path:
    path = Path(str(resources.files("voedger.ctool") / PLAYBOOKS / f"{step}.yml"))
    if not path.is_file():
        raise EngineError(f"ctool has no playbook for the step {step!r} ({path})")
    return path


def ansible_playbook() -> str:
    """The ``ansible-playbook`` of this Python (the ``ctool`` extra), else the one on PATH."""
    beside = Path(sys.executable).with_name("ansible-playbook")
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise EngineError("ansible-playbook is not installed: pip install 'voedger[ctool]'")
    return found


def _message(res: Mapping[str, Any]) -> str:
    """The useful part of a failed task's result: its message, and stderr or stdout if any."""
    parts = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg).strip())
    for key in ("stderr", "stdout"):
        text = str(res.get(key) or "").strip()
        if text and text not in parts:
            parts.append(text[-1500:])
            break
    return "; ".join(parts) or "failed"


def run_step(
    step: str,
    targets: Sequence[Target],
    connection: Connection,
    work_dir: Path,
    variables: Mapping[str, Any],
    listener: Listener,
    check: bool = False,
    verbose: bool = False,
) -> StepResult:
    """Run the playbook of ``step`` on ``targets``; never raises for what happens on a node."""
    playbook = playbook_path(step)
    binary = ansible_playbook()
    work_dir.mkdir(parents=True, exist_ok=True)
    # ansible-runner's folder holds the command's whole environment (artifacts/*/command), which
    # may carry the operator's secrets: it is removed after the run, only Ansible's output is kept.
    private = Path(tempfile.mkdtemp(prefix=f"ctool-{step}-"))
    # The multiplexed connections' sockets: a short path (a unix socket's is 107 bytes at most).
    control = Path(tempfile.mkdtemp(prefix="ctool-cp-"))
    by_address = {t.address: t for t in targets}
    hosts = {
        t.address: {
            "ansible_host": t.address,
            "node_name": t.name,
            "node_address": t.address,
            "node_root": t.node_root.rstrip("/") if t.node_root != "/" else "/",
            # A node confined to a root folder keeps Ansible's temporary files there too.
            **({"ansible_remote_tmp": f"{t.node_root.rstrip('/')}/var/tmp/ansible"} if t.node_root != "/" else {}),
            **t.extra,
        }
        for t in targets
    }
    ssh_args = " ".join(
        [
            f"-o UserKnownHostsFile={connection.known_hosts}",
            "-o StrictHostKeyChecking=yes",
            "-o BatchMode=yes",
            "-o ConnectTimeout=10",
            "-o ServerAliveInterval=5",
            "-o ServerAliveCountMax=3",
            "-o ControlMaster=auto",
            "-o ControlPersist=30s",
            f"-o ControlPath={control}/%C",
        ]
    )
    env = {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_PRIVATE_KEY_FILE": connection.key,
        "ANSIBLE_REMOTE_USER": connection.user,
        "ANSIBLE_REMOTE_PORT": str(connection.port),
        "ANSIBLE_PIPELINING": "True",
        # The system's Python (Debian's python3), not whatever a login shell's PATH finds first.
        "ANSIBLE_PYTHON_INTERPRETER": NODE_PYTHON,
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_FORKS": "20",
        "ANSIBLE_TIMEOUT": "15",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_COLLECTIONS_PATH": str(private / "collections"),
        "PATH": os.pathsep.join([str(Path(binary).parent), os.environ.get("PATH", "")]),
    }
    failures: dict[str, str] = {}
    unreachable: set[str] = set()
    outputs: dict[str, dict[str, Any]] = {}

    def handle(event: dict[str, Any]) -> bool:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        host = str(data.get("host", ""))
        node = by_address[host].name if host in by_address else host
        task = str(data.get("task", ""))
        res = data.get("res") or {}
        if kind == "runner_on_start":
            listener(TaskEvent(step, node, task, "start"))
        elif kind == "runner_on_ok":
            outputs.setdefault(node, {})[task] = res
            listener(TaskEvent(step, node, task, "changed" if res.get("changed") else "ok"))
        elif kind == "runner_on_skipped":
            listener(TaskEvent(step, node, task, "skipped"))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            failures[node] = f"{task}: {_message(res)}"
            listener(TaskEvent(step, node, task, "failed", _message(res)))
        elif kind == "runner_on_unreachable":
            unreachable.add(node)
            failures[node] = f"{task}: unreachable over SSH: {_message(res)}"
            listener(TaskEvent(step, node, task, "unreachable", _message(res)))
        return verbose

    import ansible_runner

    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            playbook=str(playbook),
            inventory={"all": {"hosts": hosts}},
            extravars=dict(variables),
            envvars=env,
            cmdline="--check" if check else None,
            quiet=True,
            event_handler=handle,
            settings={"suppress_ansible_output": True},
            timeout=None,
        )
        output = ""
        for path in sorted((private / "artifacts").glob("*/stdout")):
            output += path.read_text(errors="replace")
        with (work_dir / f"{step}.out").open("a", encoding="utf-8") as kept:
            kept.write(output)
    finally:
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    if runner.rc != 0 and not failures:
        # Ansible itself failed (a bad playbook, a missing module): say so for every node.
        tail = "\n".join(output.strip().splitlines()[-15:])
        for t in targets:
            failures[t.name] = f"ansible-playbook {runner.status} (exit {runner.rc}): {tail}"
    return StepResult(failures=failures, outputs=outputs, unreachable=unreachable)


def environment_ok() -> str | None:
    """Why the engine cannot run here, or None."""
    try:
        ansible_playbook()
        import ansible_runner  # noqa: F401
    except (EngineError, ImportError) as exc:
        return str(exc)
    return None


__all__ = ["Connection", "EngineError", "StepResult", "Target", "TaskEvent", "run_step"]
