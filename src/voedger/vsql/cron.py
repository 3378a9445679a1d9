"""Validation of JOB cron schedules, accepting what Voedger's scheduler accepts.

Voedger parses schedules with robfig/cron (optional seconds field, descriptors): five or six
fields, or ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/``@midnight``/``@hourly``/
``@every <duration>``, optionally preceded by ``TZ=<zone>`` or ``CRON_TZ=<zone>``. Only validity
matters here; running jobs on time is the job processor's business.
"""

from __future__ import annotations

import re
import zoneinfo

__all__ = ["is_valid_cron"]

_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = {
    m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (min, max, names) for seconds, minutes, hours, day of month, month, day of week
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
_DURATION = re.compile(r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")


def _valid_duration(text: str) -> bool:
    return text in ("0", "+0", "-0") or _DURATION.fullmatch(text) is not None


def _is_int(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _valid_number(text: str, names: dict[str, int]) -> int | None:
    if text.lower() in names:
        return names[text.lower()]
    return int(text) if _is_int(text) else None


def _valid_range(expr: str, lo: int, hi: int, names: dict[str, int]) -> bool:
    range_and_step = expr.split("/")
    if len(range_and_step) > 2:
        return False
    low_high = range_and_step[0].split("-")
    if len(low_high) > 2:
        return False
    if low_high[0] in ("*", "?"):
        if len(low_high) > 1:
            return False
        start, end = lo, hi
    else:
        first = _valid_number(low_high[0], names)
        last = _valid_number(low_high[-1], names)
        if first is None or last is None:
            return False
        start, end = first, last
    if len(range_and_step) == 2:
        step = range_and_step[1]
        if not _is_int(step) or int(step) == 0:
            return False
        if len(low_high) == 1 and low_high[0] not in ("*", "?"):
            end = hi
    return lo <= start <= end <= hi


def is_valid_cron(schedule: str) -> bool:
    """True when `schedule` is a valid cron schedule (see the module's docstring)."""
    spec = schedule.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        zone, _, spec = spec.partition(" ")
        try:
            zoneinfo.ZoneInfo(zone.split("=", 1)[1])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return False
        spec = spec.strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            return _valid_duration(spec[len("@every ") :].strip())
        return spec in _DESCRIPTORS
    fields = spec.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        return False
    return all(
        all(_valid_range(part, lo, hi, names) for part in field.split(","))
        for field, (lo, hi, names) in zip(fields, _BOUNDS, strict=True)
    )
