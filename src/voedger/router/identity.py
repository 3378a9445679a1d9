"""API v2 identity endpoints: sign in, refresh, sign up, change a password, register a device.

Each is a thin translation to a function of ``sys/registry`` (or of the profile workspace), as
Voedger's router does it: the registry keeps logins in the application workspace that the
login's pseudo WSID maps to, so that is where the call goes.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from voedger.appdef import QName
from voedger.apps.registry import REGISTRY_APP, create_login_args, device_credentials
from voedger.auth import SubjectKind
from voedger.auth.errors import TokenError
from voedger.processors.principal import Principal
from voedger.router.responses import json_response
from voedger.structs import wsid as ws
from voedger.syserror import SysError

_ISSUE = QName("registry", "IssuePrincipalToken")
_REFRESH = QName("sys", "RefreshPrincipalToken")
_CREATE = QName("registry", "CreateLogin")
_CHANGE = QName("registry", "ChangePassword")
_CREATE_EMAIL = QName("registry", "CreateEmailLogin")
_VERIFIED_VALUE = "payloads.VerifiedValuePayload"


class IdentityEndpoints:
    def __init__(self, router: Any) -> None:
        self.router = router
        self.vvm = router.vvm

    def _caller(self) -> object:
        return self.router.anonymous_caller()

    def _registry_ws(self, login: str) -> int:
        registry = self.vvm.app(REGISTRY_APP).runtime
        return ws.pseudo_to_app_wsid(ws.pseudo_wsid(login), registry.num_app_workspaces)

    @staticmethod
    def _text(body: dict[str, Any], key: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise SysError(400, f"field {key!r} is required and must be a non-empty string")
        return value

    async def _issue(self, app: str, login: str, password: str) -> dict[str, Any]:
        reply = await self.vvm.query(
            REGISTRY_APP,
            self._registry_ws(login),
            _ISSUE,
            self._caller(),
            body={
                "args": {"Login": login, "Password": password, "AppName": app},
                "elements": [{"fields": ["PrincipalToken", "WSID", "WSError"]}],
            },
        )
        token, profile, error = reply["sections"][0]["elements"][0][0][0]
        if error:
            raise SysError(409, f"profile workspace could not be made: {error}")
        if not token:
            raise SysError(409, "profile workspace is not yet ready")
        return {"principalToken": token, "expiresInSeconds": 3600, "profileWSID": profile}

    async def login(self, request: Request) -> Response:
        """``POST /auth/login {"login","password"}``."""
        p = request.path_params
        body = await self.router.json_body(request, allow_empty=False)
        result = await self._issue(f"{p['owner']}/{p['app']}", self._text(body, "login"), self._text(body, "password"))
        return json_response(200, result)

    async def refresh(self, request: Request) -> Response:
        """``POST /auth/refresh`` with the current token: a new one, in the profile workspace."""
        p = request.path_params
        app_name = f"{p['owner']}/{p['app']}"
        caller = self.router.authenticate(app_name, request.headers, request.cookies)
        if isinstance(caller, Principal) or caller is None:
            raise SysError(401, "a principal token is needed to refresh it")
        profile = caller.payload.profile_wsid
        reply = await self.vvm.query(
            app_name, profile, _REFRESH, caller, body={"elements": [{"fields": ["NewPrincipalToken"]}]}
        )
        token = reply["sections"][0]["elements"][0][0][0][0]
        return json_response(200, {"principalToken": token, "expiresInSeconds": 3600, "profileWSID": profile})

    async def _create_login(self, app: str, login: str, password: str, kind: int) -> None:
        wsid, body = create_login_args(login, password, app, subject_kind=kind)
        registry = self.vvm.app(REGISTRY_APP).runtime
        target = ws.pseudo_to_app_wsid(wsid, registry.num_app_workspaces) if ws.is_pseudo(wsid) else wsid
        await self.vvm.command(REGISTRY_APP, target, _CREATE, body, self._caller())

    async def users(self, request: Request) -> Response:
        """``POST /users``: 201 once the login exists; its profile follows asynchronously
        (sign-in answers 409 until it is ready). Either Voedger's
        ``{"verifiedEmailToken","displayName","password"}`` (``c.registry.CreateEmailLogin``: the
        verified e-mail is the login) or ``{"login","password"}`` (``c.registry.CreateLogin``)."""
        p = request.path_params
        app = f"{p['owner']}/{p['app']}"
        body = await self.router.json_body(request, allow_empty=False)
        if "verifiedEmailToken" in body:
            await self._create_email_login(app, body)
        else:
            await self._create_login(app, self._text(body, "login"), self._text(body, "password"), SubjectKind.USER)
        return json_response(201, {})

    async def _create_email_login(self, app: str, body: dict[str, Any]) -> None:
        token = self._text(body, "verifiedEmailToken")
        display_name = self._text(body, "displayName")
        password = self._text(body, "password")
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
            "ProfileCluster": ws.MAIN_CLUSTER_ID,
        }
        await self.vvm.command(
            REGISTRY_APP,
            self._registry_ws(email),
            _CREATE_EMAIL,
            {"args": args, "unloggedArgs": {"Password": password}},
            self._caller(),
        )

    async def change_password(self, request: Request) -> Response:
        """``POST /users/change-password {"login","oldPassword","newPassword"}``."""
        p = request.path_params
        body = await self.router.json_body(request, allow_empty=False)
        login = self._text(body, "login")
        args = {"args": {"Login": login, "AppName": f"{p['owner']}/{p['app']}"}}
        unlogged = {"OldPassword": self._text(body, "oldPassword"), "NewPassword": self._text(body, "newPassword")}
        await self.vvm.command(
            REGISTRY_APP, self._registry_ws(login), _CHANGE, {**args, "unloggedArgs": unlogged}, self._caller()
        )
        return json_response(200, {})

    async def devices(self, request: Request) -> Response:
        """``POST /devices``: a new device login with a random password, 201 ``{"login","password"}``."""
        p = request.path_params
        if (await request.body()).strip():
            raise SysError(400, "POST /devices takes no body")
        login, password = device_credentials()
        await self._create_login(f"{p['owner']}/{p['app']}", login, password, SubjectKind.DEVICE)
        return json_response(201, {"login": login, "password": password})
