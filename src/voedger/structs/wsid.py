"""Workspace IDs, bit-exact with Voedger, so that clients computing WSIDs themselves agree.

A WSID is ``cluster_id << 47 | base``: bit 63 is always 0, bits 62..47 name the cluster that
owns the workspace and bits 46..0 are the workspace's base number. Base numbers up to 0xFFFF
are pseudo WSIDs (a hash of a login or a name; never stored), app workspaces start at 0x10000
and user workspaces at 0x1FFFF.
"""

from __future__ import annotations

import zlib

CLUSTER_SHIFT = 47
MAX_BASE_WSID = (1 << CLUSTER_SHIFT) - 1
MAX_CLUSTER_ID = 0xFFFF
MAX_WSID = (1 << 63) - 1

NULL_WSID = 0
NULL_CLUSTER_ID = 0
MAIN_CLUSTER_ID = 1

MAX_PSEUDO_BASE_WSID = 0xFFFF
FIRST_BASE_APP_WSID = 0x10000
MAX_NUM_APP_WORKSPACES = 0x8000
FIRST_RESERVED_BASE_WSID = 0x18000
GUEST_BASE_WSID = FIRST_RESERVED_BASE_WSID
FIRST_BASE_USER_WSID = FIRST_BASE_APP_WSID + 0xFFFF

DEFAULT_NUM_APP_WORKSPACES = 10
DEFAULT_NUM_PARTITIONS = 10


def new_wsid(cluster_id: int, base: int) -> int:
    if not 0 <= cluster_id <= MAX_CLUSTER_ID:
        raise ValueError(f"cluster ID {cluster_id} is out of range 0..{MAX_CLUSTER_ID}")
    if not 0 <= base <= MAX_BASE_WSID:
        raise ValueError(f"base WSID {base} is out of range 0..{MAX_BASE_WSID}")
    return (cluster_id << CLUSTER_SHIFT) | base


def cluster_id(wsid: int) -> int:
    return wsid >> CLUSTER_SHIFT


def base_wsid(wsid: int) -> int:
    return wsid & MAX_BASE_WSID


def is_pseudo(wsid: int) -> bool:
    return base_wsid(wsid) <= MAX_PSEUDO_BASE_WSID


def crc16(data: bytes) -> int:
    """Voedger's "CRC16": the low 16 bits of CRC-32 (IEEE)."""
    return zlib.crc32(data) & 0xFFFF


def pseudo_wsid(entity: str, cluster: int = MAIN_CLUSTER_ID, owner_wsid: int = NULL_WSID) -> int:
    """The pseudo WSID of a login or name (``owner_wsid/entity`` for a child workspace's name)."""
    if owner_wsid != NULL_WSID:
        entity = f"{owner_wsid}/{entity}"
    return new_wsid(cluster, crc16(entity.encode()))


def app_ws_number(wsid: int, num_app_workspaces: int) -> int:
    return base_wsid(wsid) % num_app_workspaces


def app_wsid(cluster: int, ws_number: int) -> int:
    """The WSID of app workspace number ``ws_number`` (0-based) in ``cluster``."""
    if not 0 <= ws_number < MAX_NUM_APP_WORKSPACES:
        raise ValueError(f"app workspace number {ws_number} is out of range 0..{MAX_NUM_APP_WORKSPACES - 1}")
    return new_wsid(cluster, FIRST_BASE_APP_WSID + ws_number)


def pseudo_to_app_wsid(wsid: int, num_app_workspaces: int, cluster: int = MAIN_CLUSTER_ID) -> int:
    """The app workspace that serves a pseudo WSID.

    Voedger always answers with the main cluster; we keep the cluster of the pseudo WSID when
    it names one, so that a federation can place logins in other clusters.
    """
    return app_wsid(cluster_id(wsid) or cluster, app_ws_number(wsid, num_app_workspaces))


def partition_of(wsid: int, num_partitions: int) -> int:
    """The application partition that owns a workspace: the full 64-bit WSID mod NumParts."""
    return wsid % num_partitions


def is_app_wsid(wsid: int, num_app_workspaces: int) -> bool:
    base = base_wsid(wsid)
    return FIRST_BASE_APP_WSID <= base < FIRST_BASE_APP_WSID + num_app_workspaces
