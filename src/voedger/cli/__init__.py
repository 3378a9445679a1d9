"""Command-line tools: ``voedger`` (the server), ``vpm`` (applications), ``ctool`` (clusters)."""
