"""Notifications: which views of which workspaces changed, pushed to subscribed clients."""

from voedger.n10n.broker import (
    DEFAULT_LIFETIME,
    HEARTBEAT30,
    HEARTBEAT_KEY,
    Broker,
    BrokerClosed,
    Channel,
    ChannelNotFound,
    Key,
    N10nError,
    QuotaExceeded,
    Quotas,
)
from voedger.n10n.relay import Notifications, RelayError, UnknownSender

__all__ = [
    "DEFAULT_LIFETIME",
    "HEARTBEAT30",
    "HEARTBEAT_KEY",
    "Broker",
    "BrokerClosed",
    "Channel",
    "ChannelNotFound",
    "Key",
    "N10nError",
    "Notifications",
    "QuotaExceeded",
    "Quotas",
    "RelayError",
    "UnknownSender",
]
