"""JOB schedules: what Voedger's scheduler accepts is valid."""

from __future__ import annotations

import pytest

from voedger.vsql.cron import is_valid_cron


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "1 0 * * *",
        "0 0 12 * * MON-FRI",
        "*/5 * * * *",
        "0 0 1,15 * *",
        "0 9-17/2 * * 1-5",
        "0 0 * JAN,jul ?",
        "30 0 0 1 1 *",
        "5/10 * * * *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@every 2m30s",
        "@every 1h",
        "@every 1.5h",
        "@every 300ms",
        "TZ=Europe/Berlin 0 8 * * *",
        "CRON_TZ=UTC @daily",
    ],
)
def test_valid(schedule: str) -> None:
    assert is_valid_cron(schedule)


@pytest.mark.parametrize(
    "schedule",
    [
        "",
        "every day",
        "* * * *",
        "* * * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 7",
        "5-1 * * * *",
        "*/0 * * * *",
        "1-2-3 * * * *",
        "a * * * *",
        "*-5 * * * *",
        "1/2/3 * * * *",
        "² * * * *",
        "@often",
        "@every",
        "@every 5",
        "@every 5x",
        "TZ=Nowhere/Atlantis * * * * *",
    ],
)
def test_invalid(schedule: str) -> None:
    assert not is_valid_cron(schedule)
