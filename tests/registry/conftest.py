"""The registry application under the extension test kit: its extensions over an in-memory state,
with a token issuer bound as the server binds it, and a recording stand-in for the federation."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from voedger.apps.registry import REGISTRY_APP_DIR, AuthServices, bind_services, expected_app_wsid, unbind_services
from voedger.auth.tokens import Tokens
from voedger.clock import ManualClock
from voedger.state.federation import FederationReply
from voedger.structs.wsid import MAIN_CLUSTER_ID, new_wsid
from voedger.testkit import ExtensionTestKit

TARGET_APP = "test/shop"
TARGET_APP_WORKSPACES = 7
"""Not the registry's 10: the profile's application workspace is the target application's."""
PASSWORD = "correct horse battery staple"


def app_ws_of(login: str) -> int:
    """The registry's application workspace that keeps ``login`` (10 of them, main cluster)."""
    return expected_app_wsid(login, new_wsid(MAIN_CLUSTER_ID, 0), 10)


@dataclass
class RecordingFederation:
    """Answers every call with ``status`` (or what ``answers`` says for a command) and keeps them."""

    status: int = 200
    answers: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, int, str, dict[str, Any]]] = field(default_factory=list)

    async def command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply:
        self.calls.append((app, wsid, command, body))
        status = self.answers.get(command, self.status)
        return FederationReply(status, "" if status == 200 else f"answered {status}")

    async def query(self, app: str, wsid: int, query: str, body: dict[str, Any]) -> FederationReply:
        return await self.command(app, wsid, query, body)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tokens(clock: ManualClock) -> Tokens:
    return Tokens(secrets.token_bytes(64), clock)


@pytest.fixture
def federation() -> RecordingFederation:
    return RecordingFederation()


@pytest.fixture
def kit(clock: ManualClock, tokens: Tokens, federation: RecordingFederation) -> Iterator[ExtensionTestKit]:
    k = ExtensionTestKit(REGISTRY_APP_DIR, clock=clock, federation=federation)
    apps = {TARGET_APP: TARGET_APP_WORKSPACES}
    bind_services(k.app, AuthServices(tokens, apps=apps.get))
    yield k
    unbind_services(k.app)
