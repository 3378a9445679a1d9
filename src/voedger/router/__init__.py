"""The edge: the ASGI application serving Voedger's HTTP API v1 and v2."""
