"""Safe storage names: an application's name turned into something every driver accepts as a
keyspace or file name (lowercase letters and digits, a letter first, at most 43 characters)."""

from __future__ import annotations

import re
import uuid

MAX_SAFE_NAME_LEN = 43  # Cassandra allows 48 characters; 5 are left for an isolation suffix
_WRONG = re.compile(r"[^a-z0-9]+")


def safe_app_name(app: str) -> str:
    """``sys/registry`` becomes ``sysregistry``; a name with nothing usable gets a random one."""
    name = _WRONG.sub("", app.lower())
    if not name:
        name = uuid.uuid4().hex
    name = name[:MAX_SAFE_NAME_LEN]
    if name[0].isdigit():
        name = "a" + name[1:]
    return name


def mutate_safe_name(name: str) -> str:
    """A fresh variant of a taken name: a random suffix within the length limit."""
    suffix = uuid.uuid4().hex
    keep = min(len(name), MAX_SAFE_NAME_LEN - len(suffix))
    return name[:keep] + suffix
