"""What the registry's extensions need from the server that runs them: the token issuer, and
which applications are deployed.

In Voedger these are closed over when the registry is provided (``registry.Provide(cfg, itokens,
federation)``). Here the server binds them to the *application definition* it deployed, which
every extension reaches as ``state.app``; each server process (and each test server in one
process) compiles its own, so two servers with different secrets never see each other's.

The server, for every application image it deploys (the registry, and every application whose
profiles answer ``q.sys.RefreshPrincipalToken``), right after ``load_image`` and before it starts
the partitions::

    bind_services(image.appdef, AuthServices(tokens, apps=lambda name: ...))

and ``unbind_services(image.appdef)`` when it stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from voedger.appdef import AppDef
from voedger.apps.sys.mail import Mailer
from voedger.auth.attempts import PasswordGuard
from voedger.auth.tokens import Tokens
from voedger.state import State
from voedger.syserror import SysError

__all__ = ["AuthServices", "bind_services", "bound_services", "services_of", "unbind_services"]


@dataclass(frozen=True, slots=True)
class AuthServices:
    tokens: Tokens
    """Issues the principal tokens of every application (the cluster-wide secret)."""
    apps: Callable[[str], int | None] | None = None
    """The NumAppWorkspaces of a deployed application by its name, None if it is not deployed.
    Without it, CreateLogin takes any ``owner/app`` and the registry assumes the target
    application has as many application workspaces as the registry."""
    mailer: Mailer | None = None
    """Sends the verification codes of ``q.sys.InitiateEmailVerification``; None: no e-mail."""
    guard: PasswordGuard | None = None
    """Counts failed password attempts (sign-in, password change); None: no limit."""

    def __repr__(self) -> str:
        return f"AuthServices({self.tokens!r}, apps={'yes' if self.apps else 'no'}, mailer={self.mailer!r})"


_bound: dict[int, tuple[AppDef, AuthServices]] = {}
_lock = Lock()


def bind_services(app: AppDef, services: AuthServices) -> None:
    """Give the extensions of the application ``app`` defines these services (replacing any)."""
    with _lock:
        _bound[id(app)] = (app, services)


def unbind_services(app: AppDef) -> None:
    """Forget the services of ``app`` (a server that stops; a test that is done)."""
    with _lock:
        hit = _bound.get(id(app))
        if hit is not None and hit[0] is app:
            del _bound[id(app)]


def bound_services(app: AppDef) -> AuthServices | None:
    hit = _bound.get(id(app))
    return hit[1] if hit is not None and hit[0] is app else None


def services_of(state: State) -> AuthServices:
    """The services of the running extension's application; 500 if the server bound none."""
    services = bound_services(state.app)
    if services is None:
        raise SysError(500, f"application {state.app_name or '?'} has no token issuer: the server did not bind one")
    return services
