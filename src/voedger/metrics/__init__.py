"""Observability: the process's ``voedger_*`` metrics and the service that serves them."""

from voedger.metrics.collector import VoedgerCollector
from voedger.metrics.service import metrics_app

__all__ = ["VoedgerCollector", "metrics_app"]
