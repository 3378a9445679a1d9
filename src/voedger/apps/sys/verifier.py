"""Verifying a value (an e-mail address) by a code sent to it, as Voedger's verifier does.

- ``q.sys.InitiateEmailVerification(Entity, Field, Email, TargetWSID, ForRegistry, Language)``
  makes a 6-digit code, mails it (in Language: English, Dutch or French, as Voedger does) through
  the server's :class:`~voedger.apps.sys.mail.Mailer` and answers a *verification token*
  (``payloads.VerificationPayload``, 10 minutes): the value, where it is to be used (Entity,
  Field, TargetWSID) and the keyed hash of the code;
- ``q.sys.IssueVerifiedValueToken(VerificationToken, VerificationCode, ForRegistry)`` checks the
  code against that hash (in constant time) and answers the *verified value token*
  (``payloads.VerifiedValuePayload``, 10 minutes) that a command's VERIFIABLE field takes.

With ``ForRegistry`` both tokens are for ``sys/registry`` (signing up by e-mail, resetting a
password) and the target is the e-mail's pseudo WSID. Guessing is limited by the sys package's
``VerifierRate`` on both queries; a right code gives the profile its IssueVerifiedValueToken
allowance back, as in Voedger. Unlike Voedger, the code is mailed from the query itself rather
than through ``c.sys.SendEmailVerificationCode``, so that it never lands in a WLog event. Nothing
here logs a code, a token or an address.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any, Final

from voedger.appdef import QName, QNameError
from voedger.apps.registry._services import services_of
from voedger.apps.sys.builtins import platform
from voedger.apps.sys.mail import Mailer
from voedger.auth.errors import TokenError, TokenErrorKind
from voedger.state import Intents, State, StateError
from voedger.structs import wsid as ws
from voedger.syserror import SysError

__all__ = [
    "EMAIL_SUBJECT",
    "VERIFICATION_AUDIENCE",
    "VERIFICATION_CODE_LENGTH",
    "VERIFICATION_KIND_EMAIL",
    "VERIFICATION_TOKEN_TTL",
    "VERIFIED_VALUE_AUDIENCE",
    "VERIFIED_VALUE_TOKEN_TTL",
    "check_email",
    "issue_verified_payload",
    "issue_verified_value",
    "new_verification_code",
    "send_verification_code",
    "translate",
    "validate_email",
    "verified_payload",
]

REGISTRY_APP: Final = "sys/registry"
VERIFICATION_AUDIENCE: Final = "payloads.VerificationPayload"
VERIFIED_VALUE_AUDIENCE: Final = "payloads.VerifiedValuePayload"
VERIFICATION_TOKEN_TTL: Final = timedelta(minutes=10)
VERIFIED_VALUE_TOKEN_TTL: Final = timedelta(minutes=10)
VERIFICATION_CODE_LENGTH: Final = 6
VERIFICATION_KIND_EMAIL: Final = 0
"""Voedger's ``appdef.VerificationKind_EMail``."""
EMAIL_SUBJECT: Final = "Your verification code"
_VERIFY_EMAIL_REASON: Final = "to confirm your email."
_EMAIL: Final = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")
_MAX_EMAIL_LENGTH: Final = 254

ERR_CODE_EXPIRED: Final = "your verification code has expired"
ERR_INVALID_CODE: Final = "invalid verification code"


def new_verification_code() -> str:
    """Six random decimal digits from the system's CSPRNG."""
    return "".join(secrets.choice("0123456789") for _ in range(VERIFICATION_CODE_LENGTH))


def check_email(email: str) -> None:
    """400 unless ``email`` looks like a single address."""
    if len(email) > _MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise SysError(400, "email is not a valid address")


def validate_email(email: str) -> None:
    """400 unless ``email`` is one address, ``addr`` or ``name <addr>`` (what Go's
    mail.ParseAddress takes; the reasons follow its wording)."""
    text = email.strip()
    addr = text
    if text.endswith(">") and "<" in text:
        addr = text[text.rindex("<") + 1 : -1]
    local, at, domain = addr.rpartition("@")
    reason = ""
    if not text:
        reason = "no address"
    elif not at:
        reason = "missing '@' or angle-addr"
    elif not local:
        reason = "no addr-spec"
    elif not domain:
        reason = "no domain in addr-spec"
    elif any(c.isspace() or c in '<>()[]\\,;:"@' for c in local + domain) or ".." in addr or domain.startswith("."):
        reason = "invalid string"
    if reason:
        raise SysError(400, f"email validation failed: mail: {reason}")


def _mailer(state: State) -> Mailer:
    mailer = services_of(state).mailer
    if mailer is None:
        raise SysError(503, "sending e-mail is not configured on this server")
    return mailer


_TRANSLATIONS: Final[dict[str, dict[str, str]]] = {
    "nl": {
        EMAIL_SUBJECT: "Verificatiecode",
        "Here is your verification code": "Bij deze je verificatiecode",
        "Please, enter this code": "Vul deze verificatiecode in",
        _VERIFY_EMAIL_REASON: "om je mailadres te bevestigen.",
    },
    "fr": {
        EMAIL_SUBJECT: "Votre code de vérification",
        "Here is your verification code": "Voici votre code de vérification",
        "Please, enter this code": "Veuillez entrer ce code",
        _VERIFY_EMAIL_REASON: "pour confirmer votre e-mail.",
    },
}
"""The mail's words in the languages Voedger's verifier speaks (its ``l10n.go``); English is the
text itself, and the fallback for any other language or text (a caller's own Reason)."""


def translate(text: str, language: str) -> str:
    """``text`` in ``language`` (a BCP 47 tag, ``fr`` or ``fr-CA``: its primary subtag counts)."""
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    return _TRANSLATIONS.get(primary, {}).get(text, text)


def _mail_body(code: str, reason: str = _VERIFY_EMAIL_REASON, language: str = "") -> str:
    def t(text: str) -> str:
        return translate(text, language)

    return f"{t('Here is your verification code')}:\n\n    {code}\n\n{t('Please, enter this code')} {t(reason)}\n"


async def send_verification_code(
    state: State, app: str, target_wsid: int, entity: str, field: str, email: str, language: str = ""
) -> str:
    """Mail a new code to ``email`` (in ``language``, English unless Voedger's verifier speaks
    it); the verification token (for ``app``) that holds its hash."""
    services = services_of(state)
    mailer = _mailer(state)
    code = new_verification_code()
    payload: dict[str, Any] = {
        "VerificationKind": VERIFICATION_KIND_EMAIL,
        "WSID": target_wsid,
        "ID": 0,
        "Entity": entity,
        "Field": field,
        "Value": email,
        "Hash256": list(services.tokens.crypto_hash256(code.encode())),
    }
    token = services.tokens.issue_claims(app, VERIFICATION_AUDIENCE, payload, VERIFICATION_TOKEN_TTL)
    await mailer.send(email, translate(EMAIL_SUBJECT, language), _mail_body(code, language=language))
    return token


@platform.query("sys.InitiateEmailVerification")
async def initiate_email_verification(state: State, intents: Intents) -> None:
    arg = state.arg
    entity: str = arg.get("Entity", "")
    field: str = arg.get("Field", "")
    email: str = arg.get("Email", "")
    target_wsid = int(arg.get("TargetWSID", 0))
    try:
        QName.parse(entity)
    except QNameError as exc:
        raise SysError(400, f"Entity: {exc}") from None
    if not field:
        raise SysError(400, "Field must not be empty")
    check_email(email)
    app = state.app_name
    if arg.get("ForRegistry"):
        app = REGISTRY_APP
        target_wsid = ws.pseudo_wsid(email, ws.cluster_id(state.query_context.wsid))
    language = str(arg.get("Language") or "")
    token = await send_verification_code(state, app, target_wsid, entity, field, email, language)
    intents.result(VerificationToken=token)


_VERIFIED_FIELDS: Final = ("VerificationKind", "WSID", "ID", "Entity", "Field", "Value")


def issue_verified_value(state: State, app: str, verification_token: str, code: str) -> str:
    """The verified value token for a verification token (of ``app``) and the code mailed with
    it; 400 when the code is wrong or the token expired."""
    return issue_verified_payload(state, app, verified_payload(state, app, verification_token, code))


def issue_verified_payload(state: State, app: str, payload: dict[str, Any]) -> str:
    """A verified value token (of ``app``) for a payload that ``verified_payload`` gave."""
    return services_of(state).tokens.issue_claims(app, VERIFIED_VALUE_AUDIENCE, payload, VERIFIED_VALUE_TOKEN_TTL)


def verified_payload(state: State, app: str, verification_token: str, code: str) -> dict[str, Any]:
    """What a verified value token will hold (kind, WSID, ID, entity, field, value) for a
    verification token (of ``app``) and the code mailed with it; 400 when the code is wrong or
    the token expired."""
    tokens = services_of(state).tokens
    try:
        claims = tokens.validate_claims(app, VERIFICATION_AUDIENCE, verification_token)
    except TokenError as exc:
        if exc.kind is TokenErrorKind.EXPIRED:
            raise SysError(400, ERR_CODE_EXPIRED) from None
        raise SysError(400, exc.message) from None
    digest = claims.get("Hash256")
    if (
        not isinstance(digest, list)
        or len(digest) != 32
        or not all(isinstance(b, int) and 0 <= b < 256 for b in digest)
        or not tokens.verify_hash256(code.encode(), bytes(digest))
    ):
        raise SysError(400, ERR_INVALID_CODE)
    return {k: claims[k] for k in _VERIFIED_FIELDS if k in claims}


@platform.query("sys.IssueVerifiedValueToken")
async def issue_verified_value_token(state: State, intents: Intents) -> None:
    arg = state.arg
    app = REGISTRY_APP if arg.get("ForRegistry") else state.app_name
    token = issue_verified_value(state, app, arg.get("VerificationToken", ""), arg.get("VerificationCode", ""))
    # The right code: the wrong guesses before it no longer count against the profile (Voedger
    # resets VerifierRate here too), so a user who mistyped is not locked out after succeeding.
    reset = state.query_context.reset_limit
    if reset is not None:
        reset()
    intents.result(VerifiedValueToken=token)


@platform.command("sys.SendEmailVerificationCode")
async def send_email_verification_code(state: State, intents: Intents) -> None:
    """Voedger's way to mail a code: the code travels in the event (the platform's own
    InitiateEmailVerification mails directly instead, keeping codes out of the log); the async
    ApplySendEmailVerificationCode sends it."""
    validate_email(str(state.arg.get("Email", "")))
    _mailer(state)  # refuse now rather than leave the projector failing


@platform.projector("sys.ApplySendEmailVerificationCode")
async def apply_send_email_verification_code(state: State, intents: Intents) -> None:
    args = state.event.args or {}
    mailer = services_of(state).mailer
    if mailer is None:
        raise StateError("sys.ApplySendEmailVerificationCode: sending e-mail is not configured on this server")
    language = str(args.get("Language") or "")
    reason = str(args.get("Reason") or _VERIFY_EMAIL_REASON)
    body = _mail_body(str(args.get("VerificationCode", "")), reason, language)
    await mailer.send(str(args.get("Email", "")), translate(EMAIL_SUBJECT, language), body)
