"""The roles of a request, case by case, as Voedger's authenticator computes them."""

from __future__ import annotations

from typing import Any

import pytest

from voedger.appdef import QName, Workspace
from voedger.auth import (
    GUEST_LOGIN,
    ROLE_ANONYMOUS,
    ROLE_AUTHENTICATED_USER,
    ROLE_EVERYONE,
    ROLE_PROFILE_OWNER,
    ROLE_SYSTEM,
    ROLE_WORKSPACE_DEVICE,
    ROLE_WORKSPACE_OWNER,
    PrincipalPayload,
    RoleInWorkspace,
    SubjectKind,
    TokenError,
    Tokens,
    build_principal,
    parse_roles,
    roles_from_subjects,
    subject_logins,
)

from .conftest import APP

PROFILE = 140_737_488_486_400
WS = 140_737_488_486_999
OTHER_PROFILE = 140_737_488_487_000

ALICE = PrincipalPayload(login="alice", profile_wsid=PROFILE)
DEVICE = PrincipalPayload(login="dev-1", subject_kind=SubjectKind.DEVICE, profile_wsid=PROFILE)
OWNED = {"OwnerWSID": PROFILE, "WSName": "Pizza"}
NOT_OWNED = {"OwnerWSID": OTHER_PROFILE, "WSName": "Sushi"}

WAITER = QName("staff", "Waiter")
MANAGER = QName("staff", "Manager")
OWNER = QName("staff", "Owner")
BLOB_UPLOADER = QName("sys", "BLOBUploader")


def subject(login: str, roles: str, active: bool = True, kind: int = 1) -> dict[str, Any]:
    return {"Login": login, "Roles": roles, "SubjectKind": kind, "sys.IsActive": active, "ProfileWSID": 0}


class TestWithoutToken:
    def test_anonymous(self) -> None:
        p = build_principal(None, WS)
        assert p.roles == {ROLE_ANONYMOUS, ROLE_EVERYONE}
        assert p.login == "" and p.profile_wsid == 0 and not p.is_system

    def test_guest_subjects(self) -> None:
        subjects = [subject(GUEST_LOGIN, "staff.Waiter"), subject("alice", "staff.Owner")]
        p = build_principal(None, WS, descriptor=OWNED, subjects=subjects)
        assert p.roles == {ROLE_ANONYMOUS, ROLE_EVERYONE, WAITER}

    def test_subject_logins(self) -> None:
        assert subject_logins(None) == (GUEST_LOGIN,)


class TestUser:
    def test_authenticated(self) -> None:
        p = build_principal(ALICE, WS, descriptor=NOT_OWNED)
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE}
        assert p.login == "alice" and p.profile_wsid == PROFILE and not p.is_system

    def test_profile_owner(self) -> None:
        p = build_principal(ALICE, PROFILE, descriptor={"OwnerWSID": 0})
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, ROLE_PROFILE_OWNER}

    def test_workspace_owner(self) -> None:
        p = build_principal(ALICE, WS, descriptor=OWNED)
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, ROLE_WORKSPACE_OWNER}

    def test_no_descriptor_no_owner(self) -> None:
        assert ROLE_WORKSPACE_OWNER not in build_principal(ALICE, WS, descriptor=None).roles

    def test_global_roles(self) -> None:
        payload = PrincipalPayload(login="ops", profile_wsid=PROFILE, global_roles=(QName("sys", "ClusterAdmin"),))
        assert QName("sys", "ClusterAdmin") in build_principal(payload, WS).roles

    def test_subject_roles(self) -> None:
        subjects = [
            subject("alice", "staff.Waiter, staff.Manager,,"),
            subject("alice", "staff.Owner", active=False),
            subject("bob", "sys.WorkspaceAdmin"),
            subject("alice", "not a role,app.Good"),
        ]
        p = build_principal(ALICE, WS, descriptor=NOT_OWNED, subjects=subjects)
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, WAITER, MANAGER, QName("app", "Good")}

    def test_subject_of_alias(self) -> None:
        payload = PrincipalPayload(login="alice@example.com", alias="alice", profile_wsid=PROFILE)
        assert subject_logins(payload) == ("alice@example.com", "alice")
        p = build_principal(payload, WS, subjects=[subject("alice", "staff.Waiter")])
        assert WAITER in p.roles

    def test_enriched_token_roles(self) -> None:
        payload = PrincipalPayload(
            login="alice",
            profile_wsid=PROFILE,
            roles=(RoleInWorkspace(OTHER_PROFILE, MANAGER), RoleInWorkspace(12345, OWNER)),
        )
        p = build_principal(payload, WS, descriptor=NOT_OWNED)
        assert MANAGER in p.roles and OWNER not in p.roles
        assert MANAGER not in build_principal(payload, WS, descriptor=None).roles

    def test_expanded_in_the_restaurant(self, rws: Workspace) -> None:
        """GRANT staff.Owner TO sys.WorkspaceOwner, Manager TO Owner, Waiter TO Manager."""
        p = build_principal(ALICE, WS, descriptor=OWNED, workspace=rws)
        assert {ROLE_WORKSPACE_OWNER, BLOB_UPLOADER, OWNER, MANAGER, WAITER} <= p.roles
        assert p.extra["direct_roles"] == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, ROLE_WORKSPACE_OWNER}

    def test_profile_owner_expanded(self, rws: Workspace) -> None:
        p = build_principal(ALICE, PROFILE, descriptor={}, workspace=rws)
        assert {ROLE_PROFILE_OWNER, ROLE_WORKSPACE_OWNER, BLOB_UPLOADER, OWNER} <= p.roles

    def test_waiter_by_subject_expanded(self, rws: Workspace) -> None:
        p = build_principal(
            ALICE, WS, descriptor=NOT_OWNED, subjects=[subject("alice", "staff.Manager")], workspace=rws
        )
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, MANAGER, WAITER}


class TestDevice:
    def test_workspace_device(self) -> None:
        p = build_principal(DEVICE, WS, descriptor=OWNED)
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, ROLE_WORKSPACE_DEVICE}
        assert p.extra["subject_kind"] == 2

    def test_device_not_allowed(self) -> None:
        p = build_principal(DEVICE, WS, descriptor=OWNED, device_allowed=False)
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE}

    def test_device_in_its_profile(self) -> None:
        assert ROLE_PROFILE_OWNER in build_principal(DEVICE, PROFILE, descriptor={}).roles

    def test_device_expanded_to_owner(self, rws: Workspace) -> None:
        assert {ROLE_WORKSPACE_OWNER, OWNER} <= build_principal(DEVICE, WS, descriptor=OWNED, workspace=rws).roles


class TestSystem:
    def test_system_token(self, tokens: Tokens) -> None:
        info = tokens.validate(APP, tokens.issue_system(APP))
        p = build_principal(info, WS, descriptor=OWNED, subjects=[subject("system", "staff.Waiter")])
        assert p.is_system
        assert ROLE_SYSTEM in p.roles
        assert ROLE_WORKSPACE_OWNER not in p.roles and ROLE_PROFILE_OWNER not in p.roles

    def test_system_role_from_a_subject(self) -> None:
        p = build_principal(ALICE, PROFILE, subjects=[subject("alice", "sys.System")])
        assert p.is_system and ROLE_PROFILE_OWNER not in p.roles

    def test_system_by_global_role(self) -> None:
        payload = PrincipalPayload(login="ops", profile_wsid=PROFILE, global_roles=(ROLE_SYSTEM,))
        assert build_principal(payload, WS).is_system


class TestApiToken:
    def test_only_roles_of_the_request_workspace(self) -> None:
        payload = PrincipalPayload(
            login="alice",
            profile_wsid=WS,
            is_api_token=True,
            roles=(RoleInWorkspace(WS, WAITER), RoleInWorkspace(OTHER_PROFILE, OWNER)),
            global_roles=(QName("sys", "ClusterAdmin"),),
        )
        p = build_principal(payload, WS, descriptor=OWNED, subjects=[subject("alice", "staff.Manager")])
        assert p.roles == {ROLE_AUTHENTICATED_USER, ROLE_EVERYONE, WAITER}
        assert p.extra["api_token"] is True
        assert subject_logins(payload) == ()


class TestRefused:
    @pytest.mark.parametrize("kind", [0, 3])
    def test_unsupported_subject_kind(self, kind: int) -> None:
        with pytest.raises(TokenError) as info:
            build_principal(PrincipalPayload(login="x", subject_kind=kind, profile_wsid=PROFILE), WS)
        assert info.value.status == 401


def test_helpers() -> None:
    assert parse_roles(" a.B , ,c.D,bad") == (QName("a", "B"), QName("c", "D"))
    assert roles_from_subjects([subject("x", "a.B"), {"Login": "x", "Roles": None}], ("x",)) == (QName("a", "B"),)
