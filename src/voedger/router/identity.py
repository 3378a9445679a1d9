"""API v2 identity endpoints: sign in, refresh, sign up, change a password, register a device.

Each is a thin translation to a function of ``sys/registry`` (or of the profile workspace), as
Voedger's router does it: the registry keeps logins in the application workspace that the
login's pseudo WSID maps to, so that is where the call goes. Each call is an ordinary API v1
command or query sent through the router's transport to the owner of that workspace's
partition, like any client's; the endpoint reads the owner's JSON answer where it needs a value,
and an error the owner answers is raised again here, to be answered in API v2's shape.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import Response

from voedger.apps.registry import REGISTRY_APP, create_login_args, device_credentials
from voedger.auth import CredentialsKind, SubjectKind, credentials_from
from voedger.auth.errors import TokenError
from voedger.router.owner import parse_json
from voedger.router.responses import json_response
from voedger.router.wire import BusRequest, Op, error_of
from voedger.structs import wsid as ws
from voedger.syserror import SysError

if TYPE_CHECKING:
    from voedger.router.app import Router

_ISSUE: Final = "registry.IssuePrincipalToken"
_REFRESH: Final = "sys.RefreshPrincipalToken"
_CREATE: Final = "registry.CreateLogin"
_CHANGE: Final = "registry.ChangePassword"
_CREATE_EMAIL: Final = "registry.CreateEmailLogin"
_VERIFIED_VALUE: Final = "payloads.VerifiedValuePayload"
_NO_TOKEN: Final = "a principal token is needed to refresh it"
_NO_HEADER: Final = "authorization header is empty"
_FIELD_IS_EMPTY: Final = (
    "field is empty: Object «registry.IssuePrincipalTokenParams» string-field «{field}»: validate error code 4"
)


class IdentityEndpoints:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.vvm = router.vvm

    def _registry_ws(self, login: str) -> int:
        registry = self.vvm.app(REGISTRY_APP).runtime
        return ws.pseudo_to_app_wsid(ws.pseudo_wsid(login), registry.num_app_workspaces)

    async def _call(
        self,
        request: Request,
        op: Op,
        app: str,
        wsid: int,
        name: str,
        body: dict[str, Any],
        credential: tuple[str, str] = ("", ""),
    ) -> Any:
        """Send one API v1 call to the owner of ``wsid``, with the client's ``credential``
        (header, cookie) or none; the owner's JSON answer, or its error raised."""
        wsid, partition, transport = self.router.resolve(app, str(wsid))
        bus = BusRequest(
            op,
            "POST",
            app,
            wsid,
            partition,
            name,
            authorization=credential[0],
            cookie=credential[1],
            body=orjson.dumps(body),
            ip=request.client.host if request.client else "",
        )
        # Not counted against the workspace's reads: sign-ins of many users share a registry workspace.
        reply = await self.router.send(bus, transport, limit_reads=False)
        if reply.status != 200:
            raise error_of(reply)
        return orjson.loads(reply.body)

    @staticmethod
    async def _json_body(request: Request) -> dict[str, Any]:
        return parse_json(await request.body(), allow_empty=False)

    @staticmethod
    def _text(body: dict[str, Any], key: str) -> str:
        """A string field of an identity request, as Voedger's router reads it: absent (or null)
        is "X field missing", another type a mismatch; an empty string is passed on."""
        value = _optional_text(body, key)
        if value is None:
            raise SysError(400, f"{key} field missing")
        return value

    async def _issue(self, request: Request, app: str, login: str, password: str) -> dict[str, Any]:
        reply = await self._call(
            request,
            Op.V1_QUERY,
            REGISTRY_APP,
            self._registry_ws(login),
            _ISSUE,
            {
                "args": {"Login": login, "Password": password, "AppName": app},
                "elements": [{"fields": ["PrincipalToken", "WSID", "WSError"]}],
            },
        )
        token, profile, error = reply["sections"][0]["elements"][0][0][0]
        if error:
            # Voedger's words and status: the server failed the login, not the client
            raise SysError(500, f"the login profile is created with an error: {error}")
        if not token:
            raise SysError(409, "profile workspace is not yet ready, try again later")
        return {"principalToken": token, "expiresInSeconds": 3600, "profileWSID": profile}

    async def login(self, request: Request) -> Response:
        """``POST /auth/login {"login","password"}``. As in Voedger, a login or password that is
        missing or empty is refused as the registry's IssuePrincipalTokenParams refuse it."""
        p = request.path_params
        body = await self._json_body(request)
        app = f"{p['owner']}/{p['app']}"
        login, password = _optional_text(body, "login") or "", _optional_text(body, "password") or ""
        empty = [name for name, value in (("Login", login), ("Password", password)) if not value]
        if empty:
            raise SysError(400, "\n".join(_FIELD_IS_EMPTY.format(field=name) for name in empty))
        result = await self._issue(request, app, login, password)
        return json_response(200, result)

    async def refresh(self, request: Request) -> Response:
        """``POST /auth/refresh`` with the current token: a new one, from the profile workspace.

        The profile's WSID, which says where to send the call, is read from the token unchecked:
        the owner validates the very same token, so one that claims another profile fails there
        (its signature), and only the profile's owner may execute the query anyway.
        """
        p = request.path_params
        app_name = f"{p['owner']}/{p['app']}"
        if self.vvm.config.insecure_dev:
            raise SysError(401, _NO_TOKEN)
        creds = credentials_from(request.headers, request.cookies)
        if creds is None:
            raise SysError(401, _NO_HEADER)
        if creds.kind is not CredentialsKind.TOKEN:
            raise SysError(401, _NO_TOKEN)
        profile = _claimed_profile(creds.token)
        if self.router.remote_refresh is not None:
            # This cluster may not issue principal tokens: the main cluster checks the token and
            # issues one with the same payload (nothing the token did not already grant).
            token = await self.router.remote_refresh(app_name, creds.token)
            return json_response(200, {"principalToken": token, "expiresInSeconds": 3600, "profileWSID": profile})
        reply = await self._call(
            request,
            Op.V1_QUERY,
            app_name,
            profile,
            _REFRESH,
            {"elements": [{"fields": ["NewPrincipalToken"]}]},
            self.router.credential(request.headers, request.cookies),
        )
        token = reply["sections"][0]["elements"][0][0][0][0]
        return json_response(200, {"principalToken": token, "expiresInSeconds": 3600, "profileWSID": profile})

    async def _create_login(self, request: Request, app: str, login: str, password: str, kind: int) -> None:
        # The profile is made in the cluster of the router the user signed up through: near them.
        cluster = self.vvm.config.cluster_id
        wsid, body = create_login_args(login, password, app, subject_kind=kind, profile_cluster=cluster)
        registry = self.vvm.app(REGISTRY_APP).runtime
        target = ws.pseudo_to_app_wsid(wsid, registry.num_app_workspaces) if ws.is_pseudo(wsid) else wsid
        await self._call(request, Op.V1_COMMAND, REGISTRY_APP, target, _CREATE, body)

    async def users(self, request: Request) -> Response:
        """``POST /users``: 201 once the login exists; its profile follows asynchronously
        (sign-in answers 409 until it is ready). Either Voedger's
        ``{"verifiedEmailToken","displayName","password"}`` (``c.registry.CreateEmailLogin``: the
        verified e-mail is the login) or ``{"login","password"}`` (``c.registry.CreateLogin``).
        A body with neither is read as Voedger's (400 "verifiedEmailToken field missing")."""
        p = request.path_params
        app = f"{p['owner']}/{p['app']}"
        body = await self._json_body(request)
        if "verifiedEmailToken" in body or "login" not in body:
            await self._create_email_login(request, app, body)
        else:
            login, password = self._text(body, "login"), self._text(body, "password")
            await self._create_login(request, app, login, password, SubjectKind.USER)
        return json_response(201, {})

    async def _create_email_login(self, request: Request, app: str, body: dict[str, Any]) -> None:
        token = self._text(body, "verifiedEmailToken")
        display_name = self._text(body, "displayName")
        password = self._text(body, "password")
        # Checked here, not only by the registry's command: the e-mail says where the login lives.
        assert self.vvm.tokens is not None
        try:
            claims = self.vvm.tokens.validate_claims(REGISTRY_APP, _VERIFIED_VALUE, token)
        except TokenError as exc:
            raise SysError(400, f"verifiedEmailToken validation failed: {exc.message}") from None
        email = claims.get("Value")
        if not isinstance(email, str) or not email:
            raise SysError(400, "verifiedEmailToken validation failed: it verifies no e-mail")
        args = {
            "Email": token,
            "AppName": app,
            "SubjectKind": int(SubjectKind.USER),
            "WSKindInitializationData": json.dumps({"DisplayName": display_name}),
            "ProfileCluster": self.vvm.config.cluster_id,
        }
        await self._call(
            request,
            Op.V1_COMMAND,
            REGISTRY_APP,
            self._registry_ws(email),
            _CREATE_EMAIL,
            {"args": args, "unloggedArgs": {"Password": password}},
        )

    async def change_password(self, request: Request) -> Response:
        """``POST /users/change-password {"login","oldPassword","newPassword"}``: 200 with an empty
        body (typed JSON), as Voedger's router answers it; its clients expect nothing there."""
        p = request.path_params
        body = await self._json_body(request)
        login = self._text(body, "login")
        args = {"args": {"Login": login, "AppName": f"{p['owner']}/{p['app']}"}}
        unlogged = {"OldPassword": self._text(body, "oldPassword"), "NewPassword": self._text(body, "newPassword")}
        await self._call(
            request, Op.V1_COMMAND, REGISTRY_APP, self._registry_ws(login), _CHANGE, {**args, "unloggedArgs": unlogged}
        )
        return Response(b"", status_code=200, media_type="application/json")

    async def devices(self, request: Request) -> Response:
        """``POST /devices``: a new device login with a random password, 201 ``{"login","password"}``."""
        p = request.path_params
        if (await request.body()).strip():
            raise SysError(400, "POST /devices takes no body")
        login, password = device_credentials()
        await self._create_login(request, f"{p['owner']}/{p['app']}", login, password, SubjectKind.DEVICE)
        return json_response(201, {"login": login, "password": password})


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    """The string ``body[key]``, None if absent or null; 400 (Voedger's words) for another type."""
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise SysError(400, f'field "{key}" must be a string: field type mismatch')


def _claimed_profile(token: str) -> int:
    """The ``ProfileWSID`` a principal token claims, read without checking the token (routing only)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise SysError(401, "the token is not a valid principal token") from None
    profile = claims.get("ProfileWSID")
    if not isinstance(profile, int) or isinstance(profile, bool) or profile <= 0:
        raise SysError(401, _NO_TOKEN)
    return profile
