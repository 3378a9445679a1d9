"""The ``sys/cluster`` application: VSQL plus the Python of its extensions, in this folder."""

from __future__ import annotations

from pathlib import Path

CLUSTER_APP = "sys/cluster"
CLUSTER_APP_DIR = Path(__file__).parent
