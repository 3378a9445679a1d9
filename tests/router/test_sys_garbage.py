"""Odd input to the new sys functions answers 4xx, never 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.router.test_invites import Env, open_env

V1 = "/api/untill/restaurant"

QUERIES = [
    "select * from 99999999999999999999999.sys.wlog",
    "select * from 18446744073709551615.sys.wlog",
    "select * from a99999999999999999999.sys.wlog",
    "select * from sys.wlog.99999999999999999999999",
    "select * from sys.wlog where offset = 'abc'",
    "select * from sys.wlog where offset = 99999999999999999999999",
    "select * from sys.wlog limit 99999999999999999999999",
    "select * from sys.plog where offset in (1, 2)",
    "select * from service.Location where id = 99999999999999999999999",
    "select * from service.Location where id in (1, 'x')",
    "select * from service.Location where id = -1",
    "select * from service.Location where (id = 1)",
    "select * from service.Location where 1 = id",
    "select * from sys.CollectionView where PartKey = 'x' and DocQName = 'a.B'",
    "select * from sys.CollectionView where PartKey = 1 and DocQName = 'not a qname'",
    "select * from sys.CollectionView where PartKey = 99999999999999999999999 and DocQName = 'a.B'",
    "select * from sys.CollectionView where DocQName = 'a.B'",
    "select * from sys.CollectionView where PartKey = 1 and DocQName = 'a.B' and DocID = 'x'",
    "select count(*) from sys.wlog",
    "select 1 from sys.wlog",
    'select * from "".sys.wlog',
    "select * from x.y.z.sys.wlog",
    "select *, * from sys.wlog",
    "select * from sys.wlog where",
    "select * from sys.wlog limit",
    "select * from sys.wlog limit 1 2",
    "select * from sys.Subject where id = 1",
    "select * from sys.wlog where offset = 1 or offset = 2",
    "\x00select * from sys.wlog",
    "select * from sys.wlog where offset >= 1e3",
]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


async def test_sql_garbage_is_a_client_error(env: Env) -> None:
    for query in QUERIES:
        body = {"args": {"Query": query}, "elements": [{"fields": ["Result"]}]}
        r = await env.client.post(f"{V1}/{env.ws}/q.sys.SqlQuery", json=body, headers=env.owner)
        assert r.status_code < 500 or r.status_code == 501, (query, r.text)


async def test_invite_garbage_is_a_client_error(env: Env) -> None:
    bodies = [
        (
            "InitiateInvitationByEMail",
            {
                "Email": "x" * 10_000 + "@e.com",
                "Roles": "staff.Waiter",
                "ExpireDatetime": 1,
                "EmailTemplate": "text:",
                "EmailSubject": "s",
            },
        ),
        (
            "InitiateInvitationByEMail",
            {"Email": "a@b.c", "Roles": "," * 1000, "ExpireDatetime": -1, "EmailTemplate": "text:", "EmailSubject": ""},
        ),
        ("InitiateJoinWorkspace", {"InviteID": 1, "VerificationCode": ""}),
        ("InitiateJoinWorkspace", {"InviteID": -5, "VerificationCode": "x"}),
        (
            "InitiateUpdateInviteRoles",
            {"InviteID": 2**63, "Roles": "a.B", "EmailTemplate": "text:", "EmailSubject": "s"},
        ),
        ("CancelSentInvite", {"InviteID": "x"}),
        ("CreateJoinedWorkspace", {"Roles": "", "InvitingWorkspaceWSID": -1, "WSName": ""}),
        ("DeactivateJoinedWorkspace", {"InvitingWorkspaceWSID": 2**62}),
        ("OnWorkspaceDeactivated", {"OwnerWSID": 1, "WSName": "nothing"}),
        ("OnJoinedWorkspaceDeactivated", {"InvitedToWSID": 0}),
    ]
    for name, args in bodies:
        r = await env.client.post(f"{env.ws_url}/commands/sys.{name}", json={"args": args}, headers=env.owner)
        assert r.status_code < 500, (name, args, r.text)
    r = await env.client.post(
        f"{env.ws_url}/commands/sys.InitiateLeaveWorkspace", json={"args": {"x": 1}}, headers=env.owner
    )
    assert r.status_code < 500, r.text
