"""RATE and LIMIT with a manual clock: token buckets per partition, workspace, subject and IP."""

from __future__ import annotations

import pytest

from voedger.appdef import AppDef, OperationKind, QName
from voedger.auth import Limiter, RateDecision, RateLimitedError
from voedger.clock import ManualClock

from .conftest import BuildFn

Execute, Select, Insert, Update = (
    OperationKind.Execute,
    OperationKind.Select,
    OperationKind.Insert,
    OperationKind.Update,
)

DAILY_SALES = QName("sales", "DailySales")

SCHEMA = """APPLICATION app();
WORKSPACE W (
    TAG Reports;
    TABLE T INHERITS sys.CDoc (Name varchar);
    EXTENSION ENGINE BUILTIN (
        COMMAND A WITH Tags=(Reports);
        COMMAND B WITH Tags=(Reports);
        COMMAND C;
    );
    RATE Shared 2 PER MINUTE;
    RATE PerIP 3 PER HOUR PER IP;
    RATE PerWs 1 PER SECOND PER WORKSPACE;
    LIMIT AllReports ON ALL COMMANDS WITH TAG Reports WITH RATE Shared;
    LIMIT EachReport ON EACH COMMAND WITH TAG Reports WITH RATE PerIP;
    LIMIT TableWrites INSERT, UPDATE ON TABLE T WITH RATE PerWs;
);"""


def q(text: str) -> QName:
    return QName.parse(text)


@pytest.fixture
def limiter(build: BuildFn, clock: ManualClock) -> Limiter:
    return Limiter(build(SCHEMA), clock)


class TestRestaurant:
    """RATE SalesReportRate 60 PER MINUTE PER WORKSPACE PER SUBJECT on QUERY DailySales."""

    def test_sixty_per_minute(self, restaurant: AppDef, clock: ManualClock) -> None:
        lim = Limiter(restaurant, clock)
        for _ in range(60):
            assert lim.take(DAILY_SALES, wsid=1, login="ann")
        d = lim.take(DAILY_SALES, wsid=1, login="ann")
        assert not d and d.limit == q("sales.DailySalesLimit")
        assert d.retry_after == pytest.approx(1.0) and d.retry_after_seconds == 1
        clock.advance(0.5)
        assert not lim.take(DAILY_SALES, wsid=1, login="ann")
        clock.advance(0.5)
        assert lim.take(DAILY_SALES, wsid=1, login="ann")
        assert not lim.take(DAILY_SALES, wsid=1, login="ann")

    def test_per_workspace_and_subject(self, restaurant: AppDef, clock: ManualClock) -> None:
        lim = Limiter(restaurant, clock)
        for _ in range(60):
            lim.take(DAILY_SALES, wsid=1, login="ann")
        assert not lim.take(DAILY_SALES, wsid=1, login="ann")
        assert lim.take(DAILY_SALES, wsid=2, login="ann")
        assert lim.take(DAILY_SALES, wsid=1, login="bob")
        assert lim.take(DAILY_SALES, wsid=1, login="ann", partition=3)  # buckets are per partition
        assert lim.take(DAILY_SALES, wsid=1, login="ann", ip="10.0.0.1") is not None  # IP is not its scope
        assert not lim.take(DAILY_SALES, wsid=1, login="ann", ip="10.0.0.2")

    def test_refill_is_capped(self, restaurant: AppDef, clock: ManualClock) -> None:
        lim = Limiter(restaurant, clock)
        clock.advance(3600)
        assert sum(bool(lim.take(DAILY_SALES, wsid=1, login="ann")) for _ in range(100)) == 60

    def test_other_operations_and_resources_are_free(self, restaurant: AppDef, clock: ManualClock) -> None:
        lim = Limiter(restaurant, clock)
        assert lim.resources() == (
            q("sales.DailySales"),
            q("sys.InitiateEmailVerification"),
            q("sys.IssueVerifiedValueToken"),
        )
        for _ in range(100):
            assert lim.take(q("service.MakeOrder"), wsid=1)
            assert lim.take(DAILY_SALES, Select, wsid=1)
            assert lim.take(DAILY_SALES, OperationKind.Inherits, wsid=1)

    def test_verifier_rate(self, restaurant: AppDef, clock: ManualClock) -> None:
        """RATE VerifierRate 5 PER 10 MINUTES PER WORKSPACE, one LIMIT per query: one bucket each."""
        lim = Limiter(restaurant, clock)
        initiate, issue = q("sys.InitiateEmailVerification"), q("sys.IssueVerifiedValueToken")
        for _ in range(5):
            assert lim.take(initiate, wsid=7)
        d = lim.take(initiate, wsid=7)
        assert not d and d.retry_after == pytest.approx(120) and d.retry_after_seconds == 120
        assert lim.take(issue, wsid=7)
        clock.advance(119)
        assert not lim.take(initiate, wsid=7)
        clock.advance(1)
        assert lim.take(initiate, wsid=7)


class TestAllAndEach:
    def test_all_shares_one_bucket(self, limiter: Limiter) -> None:
        a, b = q("app.A"), q("app.B")
        assert limiter.take(a, ip="1.1.1.1")
        assert limiter.take(b, ip="1.1.1.1")
        d = limiter.take(a, ip="1.1.1.1")
        assert not d and d.limit == q("app.AllReports") and d.retry_after == pytest.approx(30)

    def test_each_keeps_one_bucket_per_resource(self, limiter: Limiter, clock: ManualClock) -> None:
        a, b = q("app.A"), q("app.B")
        for _ in range(3):  # 3 per hour per IP for A, however the shared limit refills
            assert limiter.take(a, ip="1.1.1.1")
            clock.advance(30)
        d = limiter.take(a, ip="1.1.1.1")
        assert not d and d.limit == q("app.EachReport")
        assert limiter.take(b, ip="1.1.1.1")  # B has a bucket of its own
        clock.advance(30)
        assert limiter.take(a, ip="2.2.2.2")  # another IP: its own EachReport bucket

    def test_all_or_nothing(self, limiter: Limiter, clock: ManualClock) -> None:
        a, b = q("app.A"), q("app.B")
        assert limiter.take(a, ip="ip")  # AllReports 1 left, EachReport(A) 2 left
        assert limiter.take(a, ip="ip")  # AllReports 0, EachReport(A) 1
        assert not limiter.take(a, ip="ip")  # refused by AllReports: EachReport(A) keeps its token
        clock.advance(30)
        assert limiter.take(a, ip="ip")  # EachReport(A) 0, AllReports 0
        clock.advance(30)
        d = limiter.take(a, ip="ip")  # AllReports has one again, EachReport(A) does not
        assert not d and d.limit == q("app.EachReport")
        assert d.retry_after == pytest.approx((1 - 60 / 1200) * 1200)
        assert limiter.take(b, ip="ip")  # the AllReports token was not taken by the refusal

    def test_unlimited_command(self, limiter: Limiter) -> None:
        for _ in range(10):
            assert limiter.take(q("app.C"))

    def test_table_operations(self, limiter: Limiter, clock: ManualClock) -> None:
        t = q("app.T")
        assert limiter.limits_of(t, Insert) == limiter.limits_of(t, Update)
        assert limiter.limits_of(t, Select) == ()
        assert limiter.take(t, Insert, wsid=1)
        assert not limiter.take(t, Update, wsid=1)  # one shared bucket for INSERT and UPDATE on T
        assert limiter.take(t, Insert, wsid=2)
        assert limiter.take(t, Select, wsid=1)
        clock.advance(1)
        assert limiter.take(t, Update, wsid=1)


class TestApi:
    def test_check_raises_429(self, limiter: Limiter) -> None:
        limiter.check(q("app.A"))
        limiter.check(q("app.A"))
        with pytest.raises(RateLimitedError) as info:
            limiter.check(q("app.A"))
        err = info.value
        assert err.status == 429
        assert err.headers == {"Retry-After": "30"}
        assert err.retry_after == 30
        assert err.qname == "app.AllReports"

    def test_reset(self, limiter: Limiter) -> None:
        limiter.take(q("app.A"))
        limiter.take(q("app.A"))
        assert not limiter.take(q("app.A"))
        limiter.reset(q("app.A"))
        assert limiter.take(q("app.A"))

    def test_give_back(self, limiter: Limiter) -> None:
        t = q("app.T")
        assert limiter.take(t, Insert, wsid=1)
        limiter.give_back(t, Insert, wsid=1)
        assert limiter.take(t, Insert, wsid=1)
        limiter.give_back(t, Insert, wsid=1)
        limiter.give_back(t, Insert, wsid=1)  # never above the burst
        assert limiter.take(t, Insert, wsid=1)
        assert not limiter.take(t, Insert, wsid=1)

    def test_full_buckets_are_collected(self, build: BuildFn, clock: ManualClock) -> None:
        lim = Limiter(build(SCHEMA), clock)
        for i in range(4095):
            lim.take(q("app.T"), Insert, wsid=i + 1)
        assert lim.bucket_count == 4095
        clock.advance(10)
        lim.take(q("app.T"), Insert, wsid=99_999)  # the 4096th take collects
        assert lim.bucket_count == 1

    def test_an_app_with_only_the_sys_limits(self, build: BuildFn) -> None:
        lim = Limiter(build("APPLICATION app(); WORKSPACE W ();"))
        assert lim.resources() == (q("sys.InitiateEmailVerification"), q("sys.IssueVerifiedValueToken"))
        assert lim.take(q("sys.CUD"))

    def test_decision(self) -> None:
        assert RateDecision(True).retry_after_seconds == 0
        assert RateDecision(False, 0.2).retry_after_seconds == 1
        assert RateDecision(False, 2.000000001).retry_after_seconds == 2
        assert RateDecision(False, 2.5).retry_after_seconds == 3
