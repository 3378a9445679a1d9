"""Invitations addressed to a login alias, after Voedger's ``pkg/sys/it/impl_invites_feature_test.go``
(an invitation to an authenticated identifier: the login itself or its active alias): the member
is the login itself, the Subject remembers the address the invitation was sent to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.router.test_identity import sign_in
from tests.router.test_invites import (
    Env,
    can_read_locations,
    invite,
    invite_doc,
    join,
    open_env,
    subjects,
    wait_state,
)
from tests.router.test_reset_password import login_with_alias
from voedger.apps.sys.invites import InviteState


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


async def test_invitation_to_an_alias_is_joined_by_the_login(env: Env) -> None:
    login, alias = "jsmith@example.com", "j.smith@example.com"
    await login_with_alias(env, login, alias, "jsmith-pa55")
    auth, _ = await sign_in(env.client, login, "jsmith-pa55")  # the token names the alias too

    # addressed to someone else: refused, naming the login itself
    other_id, other_code = await invite(env, "other@example.com")
    r = await join(env, other_id, other_code, auth)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == f"invitation was sent to other@example.com but current login is {login}"

    invite_id, code = await invite(env, alias)
    r = await join(env, invite_id, code, auth)
    assert r.status_code == 200, r.text
    doc = await wait_state(env, invite_id, InviteState.Joined)
    assert doc["ActualLogin"] == login
    [subject] = await subjects(env, login)
    assert subject["InviteEmail"] == alias and subject["sys.ID"] == doc["SubjectID"]
    assert await can_read_locations(env, auth) == 200

    # signed in by the alias, the same member; leaving finds the invite sent to the alias
    by_alias, _ = await sign_in(env.client, alias, "jsmith-pa55")
    r = await env.client.post(f"{env.ws_url}/commands/sys.InitiateLeaveWorkspace", json={}, headers=by_alias)
    assert r.status_code == 200, r.text
    await wait_state(env, invite_id, InviteState.Left)
    assert (await invite_doc(env, invite_id))["ActualLogin"] == login
