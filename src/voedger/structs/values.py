"""Field values: JSON from a client checked against a field's declaration and turned into the
canonical JSON value the platform stores (records and events are kept as JSON objects; bytes
travel and rest as base64).

Every mistake is a :class:`ValidationError` naming the type, the field and what is wrong; the
command and query processors turn it into a 400.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from functools import lru_cache
from typing import Any

from voedger.appdef import DEFAULT_MAX_LEN, DataKind, Field, QName, QNameError

Value = int | float | str | bool | dict[str, Any]

_INT_RANGES = {
    DataKind.int8: (-(1 << 7), (1 << 7) - 1),
    DataKind.int16: (-(1 << 15), (1 << 15) - 1),
    DataKind.int32: (-(1 << 31), (1 << 31) - 1),
    DataKind.int64: (-(1 << 63), (1 << 63) - 1),
    DataKind.RecordID: (0, (1 << 63) - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38


class ValidationError(ValueError):
    """A value does not fit its declaration; the message says which and why."""


@lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _where(owner: QName | str, f: Field) -> str:
    return f"{owner} field «{f.name}»"


def coerce(owner: QName | str, f: Field, raw: Any) -> Value:
    """The stored value of ``raw`` for field ``f`` of ``owner`` (raises ValidationError)."""
    kind = f.kind
    bounds = _INT_RANGES.get(kind)
    if bounds is not None:
        if type(raw) is int and bounds[0] <= raw <= bounds[1]:
            return raw  # the common case, checked without a call
        return _coerce_int(owner, f, raw)
    if kind is DataKind.string and type(raw) is str and f.pattern is None:
        limit = f.max_len if f.max_len is not None else DEFAULT_MAX_LEN
        if len(raw) * 4 <= limit:
            return raw  # fits whatever its encoding: UTF-8 takes at most 4 bytes per character
    if kind in (DataKind.float32, DataKind.float64):
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ValidationError(f"{_where(owner, f)}: expected a number of kind {kind}, got {_show(raw)}")
        if kind is DataKind.float32 and abs(raw) > _FLOAT32_MAX:
            raise ValidationError(f"{_where(owner, f)}: {raw} is out of the range of float32")
        return float(raw)
    if kind is DataKind.bool:
        if not isinstance(raw, bool):
            raise ValidationError(f"{_where(owner, f)}: expected true or false, got {_show(raw)}")
        return raw
    if kind is DataKind.string:
        if not isinstance(raw, str):
            raise ValidationError(f"{_where(owner, f)}: expected a string, got {_show(raw)}")
        _check_length(owner, f, len(raw.encode()))
        if f.pattern is not None and not _pattern(f.pattern).fullmatch(raw):
            raise ValidationError(f"{_where(owner, f)}: value {raw!r} does not match pattern {f.pattern!r}")
        return raw
    if kind is DataKind.bytes:
        if not isinstance(raw, str):
            raise ValidationError(f"{_where(owner, f)}: expected base64 text, got {_show(raw)}")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(f"{_where(owner, f)}: value is not valid base64") from None
        _check_length(owner, f, len(data))
        if f.pattern is not None and not _pattern(f.pattern).fullmatch(raw):
            raise ValidationError(f"{_where(owner, f)}: value does not match pattern {f.pattern!r}")
        return base64.b64encode(data).decode()
    if kind is DataKind.QName:
        if not isinstance(raw, str):
            raise ValidationError(f"{_where(owner, f)}: expected a qualified name, got {_show(raw)}")
        try:
            QName.parse(raw)
        except QNameError as exc:
            raise ValidationError(f"{_where(owner, f)}: {exc}") from None
        return raw
    if kind in (DataKind.Record, DataKind.Event):
        if not isinstance(raw, dict):
            raise ValidationError(f"{_where(owner, f)}: expected a JSON object, got {_show(raw)}")
        return raw  # sys views only: kept as the JSON object it is
    raise ValidationError(f"{_where(owner, f)}: fields of kind {kind} cannot be set")


def _coerce_int(owner: QName | str, f: Field, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValidationError(f"{_where(owner, f)}: expected a number of kind {f.kind}, got {_show(raw)}")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValidationError(f"{_where(owner, f)}: expected a whole number, got {raw}")
        raw = int(raw)
    if not isinstance(raw, int):
        raise ValidationError(f"{_where(owner, f)}: expected a number of kind {f.kind}, got {_show(raw)}")
    lo, hi = _INT_RANGES[f.kind]
    if not lo <= raw <= hi:
        raise ValidationError(f"{_where(owner, f)}: {raw} is out of the range of {f.kind} ({lo}..{hi})")
    return raw


def _check_length(owner: QName | str, f: Field, length: int) -> None:
    limit = f.max_len if f.max_len is not None else DEFAULT_MAX_LEN
    if length > limit:
        raise ValidationError(f"{_where(owner, f)}: value is {length} bytes long, at most {limit} allowed")


def _show(raw: Any) -> str:
    if raw is None:
        return "null"
    text = repr(raw)
    kind = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    label = kind.get(type(raw), type(raw).__name__)
    return f"{label} {text[:40]}{'…' if len(text) > 40 else ''}"


def zero(kind: DataKind) -> Value:
    """The value an unset field reads as, as in Voedger."""
    if kind in _INT_RANGES:
        return 0
    if kind in (DataKind.float32, DataKind.float64):
        return 0.0
    if kind is DataKind.bool:
        return False
    return ""
