"""Invitations: bringing a login into a workspace by e-mail, as Voedger's invite state machine does.

In the inviting workspace, the owner's commands only check and mark a ``sys.Invite`` (its
``Version`` set to 1, so that the projector knows the event is for it); the async
``ApplyInviteEvents`` then does the work that reaches outside the command: it mails the invitee,
makes or changes the invitee's ``sys.Subject`` (which gives the login its roles here), keeps the
invitee's ``sys.JoinedWorkspace`` (in their profile) in step, and moves the invite to its next
state. Every step it takes is a command called as the System principal, and each handler first
checks the invite is still in a state the event expects, so a replayed event does nothing twice.

States (``sys.Invite.State``), numbered as in Voedger::

    ToBeInvited(1) -> Invited(2) -> [join] -> Joined(4) -> Cancelled(7) | Left(9)
    Invited(2) -> Cancelled(7);  Cancelled / Left -> ToBeInvited (invited again)

``ToBeJoined(3)``, ``ToUpdateRoles(5)``, ``ToBeCancelled(6)`` and ``ToBeLeft(8)`` are states of
older Voedger data; they are accepted where Voedger accepts them, and never written.

The e-mail template (``text:...``; ``resource:...`` is accepted and sent as it is) may carry
``${VerificationCode}``, ``${InviteID}``, ``${WSID}``, ``${WSName}`` and ``${Email}`` (invitation)
or ``${Roles}`` (roles changed). Nothing here logs a code or an address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import IntEnum
from typing import Any, Final

from voedger.appdef import QName, QNameError, Role, Structure, Workspace
from voedger.apps.registry._services import services_of
from voedger.apps.sys.builtins import platform
from voedger.apps.sys.mail import Mailer
from voedger.apps.sys.verifier import new_verification_code, validate_email
from voedger.processors.uniques import UNIQUES_VIEW, unique_entries
from voedger.state import Intents, State, StateError
from voedger.state.rows import Reads, ViewRows, producing_rows
from voedger.structs.events import CUD, Event
from voedger.syserror import SysError

__all__ = ["InviteState", "login_hash64"]

log = logging.getLogger(__name__)


class InviteState(IntEnum):
    Null = 0
    ToBeInvited = 1
    Invited = 2
    ToBeJoined = 3
    Joined = 4
    ToUpdateRoles = 5
    ToBeCancelled = 6
    Cancelled = 7
    ToBeLeft = 8
    Left = 9

    def __str__(self) -> str:
        return f"State_{self.name}"  # as Voedger names a state in its messages


S = InviteState
INVITE: Final = "sys.Invite"
SUBJECT: Final = "sys.Subject"
JOINED_WORKSPACE: Final = "sys.JoinedWorkspace"
INVITE_INDEX: Final = QName("sys", "InviteIndexView")
JOINED_WORKSPACE_INDEX: Final = QName("sys", "JoinedWorkspaceIndexView")
SUBJECTS_IDX: Final = QName("sys", "ViewSubjectsIdx")
DESCRIPTOR: Final = "sys.WorkspaceDescriptor"
INVITE_INDEX_DUMMY: Final = 17
JOINED_WORKSPACE_INDEX_DUMMY: Final = 56
VERSION: Final = 1

_INVITE_BY_EMAIL = "sys.InitiateInvitationByEMail"
_JOIN = "sys.InitiateJoinWorkspace"
_UPDATE_ROLES = "sys.InitiateUpdateInviteRoles"
_CANCEL_ACCEPTED = "sys.InitiateCancelAcceptedInvite"
_LEAVE = "sys.InitiateLeaveWorkspace"
_CANCEL_SENT = "sys.CancelSentInvite"

# The states in which each command may act on an invite (Voedger's, legacy states included).
_VALID_FOR_COMMAND: Final[Mapping[str, frozenset[InviteState]]] = {
    _INVITE_BY_EMAIL: frozenset(
        {S.Cancelled, S.Left, S.Invited, S.ToBeInvited, S.ToBeJoined, S.ToBeCancelled, S.ToBeLeft, S.ToUpdateRoles}
    ),
    _JOIN: frozenset({S.Invited, S.ToBeJoined}),
    _UPDATE_ROLES: frozenset({S.Joined, S.ToUpdateRoles}),
    _CANCEL_ACCEPTED: frozenset({S.Joined, S.ToBeCancelled, S.ToUpdateRoles}),
    _LEAVE: frozenset({S.Joined, S.ToBeLeft, S.ToUpdateRoles}),
    _CANCEL_SENT: frozenset({S.Invited, S.ToBeInvited, S.ToBeJoined}),
}
# An active member may be invited again only from these states.
_REINVITE_ALLOWED: Final = _VALID_FOR_COMMAND[_INVITE_BY_EMAIL]
# The states in which the projector still has the work of each command to do.
_VALID_FOR_PROJECTOR: Final[Mapping[str, frozenset[InviteState]]] = {
    _INVITE_BY_EMAIL: frozenset({S.ToBeInvited}),
    _JOIN: frozenset({S.Invited, S.ToBeJoined}),
    _UPDATE_ROLES: frozenset({S.Joined, S.ToUpdateRoles}),
    _CANCEL_ACCEPTED: frozenset({S.Joined, S.ToBeCancelled, S.ToUpdateRoles}),
    _LEAVE: frozenset({S.Joined, S.ToBeLeft, S.ToUpdateRoles}),
    _CANCEL_SENT: frozenset({S.ToBeInvited, S.Invited, S.ToBeJoined}),
}

# Client-visible error texts: Voedger's.
ERR_INVITE_NOT_EXISTS: Final = "invite not exists"
ERR_INVITE_EXPIRED: Final = "invite expired"
ERR_TEMPLATE_INVALID: Final = "invite template invalid, it must be prefixed with 'text:' or 'resource:'"
ERR_CODE_INVALID: Final = "invite verification code invalid"
ERR_STATE_INVALID: Final = "invite state invalid"
ERR_REINVITE_NOT_ALLOWED: Final = "re-invite not allowed for state"
ERR_ROLE_INVALID: Final = "invalid role"
ERR_ROLES_EMPTY: Final = "roles must not be empty"
ERR_SYSTEM_ROLE: Final = "system roles cannot be assigned via invite"
ERR_ROLE_NOT_FOUND: Final = "role not found in workspace"
ERR_ROLE_DUPLICATE: Final = "duplicate role"
ERR_CONTROLLING_INVITE: Final = (
    "A workspace membership is already active for canonical login {login}. The existing accepted invitation "
    "must be cancelled manually before another invitation can be accepted."
)

_TEXT_PREFIX: Final = "text:"
_RESOURCE_PREFIX: Final = "resource:"

_FNV64_OFFSET: Final = 0xCBF29CE484222325
_FNV64_PRIME: Final = 0x100000001B3
_MASK64: Final = (1 << 64) - 1


def login_hash64(login: str) -> int:
    """FNV-1 (not 1a) of the login's UTF-8 bytes, as a signed 64-bit integer: Voedger's
    ``coreutils.LoginHash``, the partition key of ``sys.ViewSubjectsIdx``."""
    h = _FNV64_OFFSET
    for b in login.encode():
        h = ((h * _FNV64_PRIME) & _MASK64) ^ b
    return h - (1 << 64) if h >= 1 << 63 else h


def _go_quote(s: str) -> str:
    """A string as Go's ``%q`` shows it (for the ASCII logins it is used with)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- checks ----------------------------------------------------------------------------------------


def _check_template(template: str) -> None:
    if not template.startswith((_TEXT_PREFIX, _RESOURCE_PREFIX)):
        raise SysError(400, ERR_TEMPLATE_INVALID)


def _template_text(template: str) -> str:
    if template.startswith(_TEXT_PREFIX):
        return template[len(_TEXT_PREFIX) :]
    return template[len(_RESOURCE_PREFIX) :]


async def _workspace_roles(state: State) -> Workspace | None:
    """The workspace type whose roles an invite may give."""
    desc = await state.singleton(DESCRIPTOR)
    kind = desc.get("WSKind") if desc else None
    try:
        ws = state.app.workspace_by_descriptor(str(kind)) if kind else None
    except ValueError:
        ws = None
    return ws


async def _check_roles(state: State, roles: str) -> None:
    """Voedger's validateInviteRoles: a comma-separated list of roles of this workspace, none of
    them a sys role, none twice."""
    trimmed = roles.strip()
    if not trimmed:
        raise SysError(400, ERR_ROLES_EMPTY)
    ws = await _workspace_roles(state)
    seen: set[QName] = set()
    for part in trimmed.split(","):
        role = part.strip()
        if not role:
            raise SysError(400, ERR_ROLES_EMPTY)
        try:
            q = QName.parse(role)
        except QNameError as exc:
            raise SysError(400, f"{ERR_ROLE_INVALID}: {role}: {exc}") from None
        if q in seen:
            raise SysError(400, f"{ERR_ROLE_DUPLICATE}: {role}")
        seen.add(q)
        if q.pkg == "sys":
            raise SysError(400, f"{ERR_SYSTEM_ROLE}: {role}")
        t = ws.type(q) if ws is not None else state.app.find(q)
        if not isinstance(t, Role):
            raise SysError(400, f"{ERR_ROLE_NOT_FOUND}: {role}")


def _state_of(invite: Mapping[str, Any]) -> InviteState:
    try:
        return InviteState(int(invite.get("State", 0)))
    except ValueError:
        return InviteState.Null


def _valid(invite: Mapping[str, Any], command: str) -> bool:
    return _state_of(invite) in _VALID_FOR_COMMAND[command]


# --- lookups -------------------------------------------------------------------------------------


async def _subject_by_login(state: State, login: str) -> dict[str, Any] | None:
    """The ``sys.Subject`` of a login, active or not: through ``sys.ViewSubjectsIdx``, else (a
    Subject made before that index existed) through its unique Login."""
    if not login:
        return None
    row = await state.view(SUBJECTS_IDX, LoginHash=login_hash64(login), Login=login)
    subject_id = int(row["SubjectID"]) if row else 0
    if not subject_id:
        t = state.app.find(SUBJECT)
        if isinstance(t, Structure):
            for entry in unique_entries(t, {"Login": login}):
                hit = await state.view(UNIQUES_VIEW, **entry.key())
                if hit and hit.get("ID"):
                    subject_id = int(hit["ID"])
    if not subject_id:
        return None
    rec = await state.record(subject_id)
    return dict(rec) if rec is not None and rec.get("sys.QName") == SUBJECT else None


async def _invite_by_email(state: State, email: str) -> dict[str, Any] | None:
    if not email:
        return None
    row = await state.view(INVITE_INDEX, Dummy=INVITE_INDEX_DUMMY, Login=email)
    invite_id = int(row["InviteID"]) if row else 0
    if not invite_id:
        return None
    rec = await state.record(invite_id)
    return dict(rec) if rec is not None else None


async def _invite(state: State, invite_id: int) -> dict[str, Any] | None:
    rec = await state.record(invite_id)
    return dict(rec) if rec is not None and rec.get("sys.QName") == INVITE else None


class ControllingInviteNotIdentified(Exception):
    pass


async def _controlling_invite(
    state: State, subject: Mapping[str, Any], login: str, alias: str, excluded: int
) -> dict[str, Any]:
    """The one Joined invite that controls an active Subject: the one its InviteEmail names if
    that is valid, else the only valid one among the login's and the alias's invites."""
    subject_id = int(subject["sys.ID"])
    cache: dict[str, dict[str, Any] | None] = {}

    async def lookup(email: str) -> dict[str, Any] | None:
        if email not in cache:
            cache[email] = await _invite_by_email(state, email)
        return cache[email]

    def valid(inv: dict[str, Any] | None) -> bool:
        return (
            inv is not None
            and int(inv["sys.ID"]) != excluded
            and _state_of(inv) is S.Joined
            and int(inv.get("SubjectID") or 0) == subject_id
        )

    named = await lookup(str(subject.get("InviteEmail") or ""))
    if named is not None and valid(named):
        return named
    candidates: dict[int, dict[str, Any]] = {}
    for email in (login, alias):
        if email:
            inv = await lookup(email)
            if inv is not None and valid(inv):
                candidates[int(inv["sys.ID"])] = inv
    if len(candidates) != 1:
        raise ControllingInviteNotIdentified
    return next(iter(candidates.values()))


def _controlling_error(login: str) -> SysError:
    return SysError(409, ERR_CONTROLLING_INVITE.format(login=_go_quote(login)))


def _mailer(state: State) -> Mailer:
    mailer = services_of(state).mailer
    if mailer is None:
        raise SysError(503, "sending e-mail is not configured on this server")
    return mailer


async def _existing_invite(state: State) -> dict[str, Any]:
    invite = await _invite(state, int(state.arg["InviteID"]))
    if invite is None:
        raise SysError(400, ERR_INVITE_NOT_EXISTS)
    return invite


# --- commands in the inviting workspace ------------------------------------------------------------


@platform.command(_INVITE_BY_EMAIL)
async def initiate_invitation_by_email(state: State, intents: Intents) -> None:
    arg = state.arg
    _check_template(str(arg.get("EmailTemplate", "")))
    roles = str(arg.get("Roles", ""))
    await _check_roles(state, roles)
    email = str(arg.get("Email", ""))
    subject = await _subject_by_login(state, email)
    subject_active = subject is not None and subject.get("sys.IsActive", True)
    validate_email(email)
    _mailer(state)  # fail now rather than leave the invite stuck: the projector could not mail it
    now = state.command_context.registered_at
    expire = int(arg.get("ExpireDatetime", 0))
    invite = await _invite_by_email(state, email)
    if invite is not None:
        current = _state_of(invite)
        if subject_active and current not in _REINVITE_ALLOWED:
            raise SysError(400, f"{ERR_REINVITE_NOT_ALLOWED} {current}")
        if current not in _VALID_FOR_COMMAND[_INVITE_BY_EMAIL]:
            raise SysError(400, ERR_STATE_INVALID)
        intents.update(
            invite,
            Roles=roles,
            ExpireDatetime=expire,
            State=int(S.ToBeInvited),
            Updated=now,
            ActualLogin="",  # the invitee's login, known when they join
            Version=VERSION,
        )
        return
    intents.insert(
        INVITE,
        Login=email,
        Email=email,
        Roles=roles,
        ExpireDatetime=expire,
        Created=now,
        Updated=now,
        State=int(S.ToBeInvited),
        Version=VERSION,
    )


@platform.command(_JOIN)
async def initiate_join_workspace(state: State, intents: Intents) -> None:
    """The invitee (any authenticated login holding the code) accepts the invite."""
    arg = state.arg
    invite = await _existing_invite(state)
    if not _valid(invite, _JOIN):
        raise SysError(400, ERR_STATE_INVALID)
    ctx = state.command_context
    if int(invite.get("ExpireDatetime") or 0) < ctx.registered_at:
        raise SysError(400, ERR_INVITE_EXPIRED)
    if str(invite.get("VerificationCode") or "") != str(arg.get("VerificationCode", "")):
        raise SysError(400, ERR_CODE_INVALID)
    principal = ctx.principal
    login, alias = str(principal.get("login", "")), str(principal.get("alias", ""))
    sent_to = str(invite.get("Email", ""))
    if sent_to != login and sent_to != alias:
        raise SysError(400, f"invitation was sent to {sent_to} but current login is {login}")
    subject = await _subject_by_login(state, login)
    if subject is not None and subject.get("sys.IsActive", True):
        try:
            await _controlling_invite(state, subject, login, alias, int(invite["sys.ID"]))
        except ControllingInviteNotIdentified:
            raise _controlling_error(login) from None
    intents.update(
        invite,
        InviteeProfileWSID=int(principal.get("profile_wsid", 0)),
        SubjectKind=int(principal.get("subject_kind", 1)),
        Updated=ctx.registered_at,
        ActualLogin=login,
        Version=VERSION,
    )


async def _mark(state: State, intents: Intents, command: str) -> None:
    invite = await _existing_invite(state)
    if not _valid(invite, command):
        raise SysError(400, ERR_STATE_INVALID)
    intents.update(invite, Version=VERSION)  # tells ApplyInviteEvents the event is its to handle


@platform.command(_UPDATE_ROLES)
async def initiate_update_invite_roles(state: State, intents: Intents) -> None:
    _check_template(str(state.arg.get("EmailTemplate", "")))
    await _check_roles(state, str(state.arg.get("Roles", "")))
    await _mark(state, intents, _UPDATE_ROLES)
    _mailer(state)


@platform.command(_CANCEL_ACCEPTED)
async def initiate_cancel_accepted_invite(state: State, intents: Intents) -> None:
    await _mark(state, intents, _CANCEL_ACCEPTED)


@platform.command(_CANCEL_SENT)
async def cancel_sent_invite(state: State, intents: Intents) -> None:
    await _mark(state, intents, _CANCEL_SENT)


@platform.command(_LEAVE)
async def initiate_leave_workspace(state: State, intents: Intents) -> None:
    """A member leaves: the invite that controls their Subject here is found from their login."""
    principal = state.command_context.principal
    login, alias = str(principal.get("login", "")), str(principal.get("alias", ""))
    subject = await _subject_by_login(state, login)
    if subject is None or not subject.get("sys.IsActive", True):
        raise SysError(400, ERR_STATE_INVALID)
    try:
        invite = await _controlling_invite(state, subject, login, alias, 0)
    except ControllingInviteNotIdentified:
        raise _controlling_error(login) from None
    if not _valid(invite, _LEAVE):
        raise SysError(400, ERR_STATE_INVALID)
    intents.update(invite, Version=VERSION)


# --- commands in the invitee's profile -----------------------------------------------------------


async def _joined_workspace(state: State, inviting_wsid: int) -> dict[str, Any] | None:
    row = await state.view(
        JOINED_WORKSPACE_INDEX, Dummy=JOINED_WORKSPACE_INDEX_DUMMY, InvitingWorkspaceWSID=inviting_wsid
    )
    if not row:
        return None
    rec = await state.record(int(row["JoinedWorkspaceID"]))
    return dict(rec) if rec is not None else None


async def _required_joined_workspace(state: State) -> dict[str, Any]:
    inviting = int(state.arg["InvitingWorkspaceWSID"])
    joined = await _joined_workspace(state, inviting)
    if joined is None:
        raise SysError(404, f"joined workspace of inviting workspace {inviting} does not exist")
    return joined


@platform.command("sys.CreateJoinedWorkspace")
async def create_joined_workspace(state: State, intents: Intents) -> None:
    """Idempotent by the inviting workspace: joining again updates (and reactivates) the record."""
    arg = state.arg
    joined = await _joined_workspace(state, int(arg["InvitingWorkspaceWSID"]))
    if joined is not None:
        intents.update(joined, Roles=arg["Roles"], **{"sys.IsActive": True})
        return
    intents.insert(
        JOINED_WORKSPACE, Roles=arg["Roles"], WSName=arg["WSName"], InvitingWorkspaceWSID=arg["InvitingWorkspaceWSID"]
    )


@platform.command("sys.UpdateJoinedWorkspaceRoles")
async def update_joined_workspace_roles(state: State, intents: Intents) -> None:
    joined = await _required_joined_workspace(state)
    intents.update(joined, Roles=state.arg["Roles"], **{"sys.IsActive": True})


@platform.command("sys.DeactivateJoinedWorkspace")
async def deactivate_joined_workspace(state: State, intents: Intents) -> None:
    joined = await _required_joined_workspace(state)
    intents.update(joined, **{"sys.IsActive": False})


# --- SYNC projectors -------------------------------------------------------------------------------


@platform.projector("sys.ApplyViewSubjectsIdx")
@producing_rows
async def apply_view_subjects_idx(app: Any, ev: Event, reads: Reads) -> ViewRows:
    """Each new Subject under its login (never overwritten: a login keeps its Subject)."""
    return [
        (
            SUBJECTS_IDX,
            {"LoginHash": login_hash64(str(c.fields["Login"])), "Login": c.fields["Login"], "SubjectID": c.id},
        )
        for c in ev.cuds
        if c.is_new and c.qname == SUBJECT
    ]


@platform.projector("sys.ProjectorInviteIndex")
@producing_rows
async def invite_index(app: Any, ev: Event, reads: Reads) -> ViewRows:
    """The invite of each e-mail, for InitiateInvitationByEMail to find it again."""
    email = (ev.args or {}).get("Email", "")
    return [
        (INVITE_INDEX, {"Dummy": INVITE_INDEX_DUMMY, "Login": email, "InviteID": c.id})
        for c in ev.cuds
        if c.qname == INVITE
    ]


@platform.projector("sys.ProjectorJoinedWorkspaceIndex")
@producing_rows
async def joined_workspace_index(app: Any, ev: Event, reads: Reads) -> ViewRows:
    rows: ViewRows = []
    for c in ev.cuds:
        if c.qname != JOINED_WORKSPACE:
            continue
        inviting = c.fields.get("InvitingWorkspaceWSID")
        if inviting is None:  # an update: the key is in the record
            rec = await reads.record(c.id)
            inviting = rec.get("InvitingWorkspaceWSID") if rec else None
        if inviting is not None:
            rows.append(
                (
                    JOINED_WORKSPACE_INDEX,
                    {
                        "Dummy": JOINED_WORKSPACE_INDEX_DUMMY,
                        "InvitingWorkspaceWSID": inviting,
                        "JoinedWorkspaceID": c.id,
                    },
                )
            )
    return rows


# --- the async projector ---------------------------------------------------------------------------


async def _no_op(state: State, intents: Intents) -> None:
    """Voedger's per-command invite projectors, superseded by ApplyInviteEvents and kept only so
    that their names (and offsets) stay known: they do nothing."""


for _name in (
    "sys.ApplyInvitation",
    "sys.ApplyJoinWorkspace",
    "sys.ApplyUpdateInviteRoles",
    "sys.ApplyCancelAcceptedInvite",
    "sys.ApplyLeaveWorkspace",
):
    platform.projector(_name)(_no_op)


def _invite_cud(ev: Event) -> CUD | None:
    return next((c for c in ev.cuds if c.qname == INVITE), None)


class _Calls:
    """The commands the projector calls, as System, in this application."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.app = state.app_name

    async def cud(self, wsid: int, *cuds: dict[str, Any]) -> None:
        await self.state.federation_command(self.app, wsid, "c.sys.CUD", {"cuds": list(cuds)})

    async def call(self, wsid: int, command: str, args: dict[str, Any]) -> None:
        await self.state.federation_command(self.app, wsid, command, {"args": args})


def _update(record_id: int, **fields: Any) -> dict[str, Any]:
    return {"sys.ID": record_id, "fields": fields}


async def _send(state: State, to: str, subject: str, body: str) -> None:
    mailer = services_of(state).mailer
    if mailer is None:
        raise StateError("sys.ApplyInviteEvents: sending e-mail is not configured on this server")
    await mailer.send(to, subject, body)


@platform.projector("sys.ApplyInviteEvents")
async def apply_invite_events(state: State, intents: Intents) -> None:
    ev = state.event
    cud = _invite_cud(ev)
    if cud is None or not cud.fields.get("Version"):
        return  # an event of the older projectors, handled by them long ago
    if ev.qname == _INVITE_BY_EMAIL:
        row = await state.view(INVITE_INDEX, Dummy=INVITE_INDEX_DUMMY, Login=(ev.args or {}).get("Email", ""))
        invite_id = int(row["InviteID"]) if row else 0
    elif ev.qname == _LEAVE:
        invite_id = cud.id
    else:
        invite_id = int((ev.args or {}).get("InviteID") or 0)
    invite = await _invite(state, invite_id) if invite_id else None
    if invite is None:
        return
    if _state_of(invite) not in _VALID_FOR_PROJECTOR.get(ev.qname, frozenset()):
        return  # done already (a replay), or overtaken by a later command
    calls = _Calls(state)
    now = ev.registered_at
    args = ev.args or {}
    if ev.qname == _INVITE_BY_EMAIL:
        await _apply_invitation(state, calls, ev, invite_id, now)
    elif ev.qname == _JOIN:
        await _apply_join(state, calls, ev, invite, now)
    elif ev.qname == _UPDATE_ROLES:
        roles = str(args.get("Roles", ""))
        await calls.cud(ev.wsid, _update(int(invite.get("SubjectID") or 0), Roles=roles))
        profile = int(invite.get("InviteeProfileWSID") or 0)
        await calls.call(
            profile, "c.sys.UpdateJoinedWorkspaceRoles", {"Roles": roles, "InvitingWorkspaceWSID": ev.wsid}
        )
        body = _template_text(str(args.get("EmailTemplate", ""))).replace("${Roles}", roles)
        await _send(state, str(invite.get("Email", "")), str(args.get("EmailSubject", "")), body)
        await calls.cud(ev.wsid, _update(invite_id, State=int(S.Joined), Updated=now, Roles=roles))
    elif ev.qname in (_CANCEL_ACCEPTED, _LEAVE):
        await _deactivate_member(calls, ev.wsid, invite)
        final = S.Cancelled if ev.qname == _CANCEL_ACCEPTED else S.Left
        await calls.cud(ev.wsid, _update(invite_id, State=int(final), Updated=now))
    elif ev.qname == _CANCEL_SENT:
        await calls.cud(ev.wsid, _update(invite_id, State=int(S.Cancelled), Updated=now))


async def _apply_invitation(state: State, calls: _Calls, ev: Event, invite_id: int, now: int) -> None:
    args = ev.args or {}
    code = new_verification_code()
    desc = await state.singleton(DESCRIPTOR)
    values = {
        "${VerificationCode}": code,
        "${InviteID}": str(invite_id),
        "${WSID}": str(ev.wsid),
        "${WSName}": str((desc or {}).get("WSName", "")),
        "${Email}": str(args.get("Email", "")),
    }
    body = _template_text(str(args.get("EmailTemplate", "")))
    for placeholder, value in values.items():
        body = body.replace(placeholder, value)
    await _send(state, str(args.get("Email", "")), str(args.get("EmailSubject", "")), body)
    await calls.cud(ev.wsid, _update(invite_id, State=int(S.Invited), VerificationCode=code, Updated=now))


async def _apply_join(state: State, calls: _Calls, ev: Event, invite: dict[str, Any], now: int) -> None:
    """Make the invitee a member: their JoinedWorkspace (profile), then their Subject here, then
    the invite Joined (and the Subject's previous controlling invite, if any, Cancelled)."""
    invite_id = int(invite["sys.ID"])
    login = str(invite.get("ActualLogin") or "")
    email = str(invite.get("Email") or "")
    roles = str(invite.get("Roles") or "")
    subject = await _subject_by_login(state, login)
    active = subject is not None and bool(subject.get("sys.IsActive", True))
    previous = 0
    if subject is not None and active:
        try:
            previous = int((await _controlling_invite(state, subject, login, email, invite_id))["sys.ID"])
        except ControllingInviteNotIdentified:
            log.error(
                "sys.ApplyInviteEvents: join of invite %d in workspace %d skipped: the membership's "
                "controlling invitation is not identified",
                invite_id,
                ev.wsid,
            )
            return
    desc = await state.singleton(DESCRIPTOR)
    profile = int(invite.get("InviteeProfileWSID") or 0)
    await calls.call(
        profile,
        "c.sys.CreateJoinedWorkspace",
        {"Roles": roles, "InvitingWorkspaceWSID": ev.wsid, "WSName": str((desc or {}).get("WSName", ""))},
    )
    joined = {"State": int(S.Joined), "Updated": now}
    if subject is None:
        new_subject = {
            "sys.ID": 1,
            "sys.QName": SUBJECT,
            "Login": login,
            "Roles": roles,
            "SubjectKind": int(invite.get("SubjectKind") or 1),
            "ProfileWSID": profile,
            "InviteEmail": email,
        }
        await calls.cud(ev.wsid, {"fields": new_subject}, _update(invite_id, SubjectID=1, **joined))
        return
    subject_id = int(subject["sys.ID"])
    if not active:
        await calls.cud(ev.wsid, _update(subject_id, **{"sys.IsActive": True}))
    cuds = []
    if previous:
        cuds.append(_update(previous, State=int(S.Cancelled), Updated=now))
    cuds.append(_update(invite_id, SubjectID=subject_id, **joined))
    cuds.append(_update(subject_id, Roles=roles, InviteEmail=email))
    await calls.cud(ev.wsid, *cuds)


async def _deactivate_member(calls: _Calls, wsid: int, invite: Mapping[str, Any]) -> None:
    await calls.cud(wsid, _update(int(invite.get("SubjectID") or 0), **{"sys.IsActive": False}))
    profile = int(invite.get("InviteeProfileWSID") or 0)
    await calls.call(profile, "c.sys.DeactivateJoinedWorkspace", {"InvitingWorkspaceWSID": wsid})
