"""Rates and limits: how often matched functions or tables may be used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from voedger.appdef.base import Type
from voedger.appdef.filters import Filter
from voedger.appdef.kinds import LIMITABLE_OPERATIONS, LimitOption, OperationKind, RateScope, TypeKind
from voedger.appdef.qname import QName

__all__ = ["Limit", "Rate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate(Type):
    """``count`` uses per ``period``, counted separately per each of ``scopes``."""

    kind: TypeKind = TypeKind.Rate
    count: int = 0
    period: timedelta = timedelta(0)
    scopes: tuple[RateScope, ...] = (RateScope.AppPartition,)

    def __post_init__(self) -> None:
        if self.count <= 0 or self.period <= timedelta(0):
            raise ValueError(f"{self.qname}: a rate needs a positive count and period")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit(Type):
    """Applies a rate to operations on the types the filter selects: one counter shared by ALL of
    them, or one for EACH."""

    kind: TypeKind = TypeKind.Limit
    ops: frozenset[OperationKind] = frozenset()
    option: LimitOption = LimitOption.EACH
    filter: Filter
    rate: QName

    def __post_init__(self) -> None:
        if not self.ops or not self.ops <= LIMITABLE_OPERATIONS:
            raise ValueError(f"{self.qname}: limit operations {sorted(self.ops)} are not limitable")
