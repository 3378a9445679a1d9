"""Structures over storage: WSIDs, record IDs, offsets, and how logs, records and views are laid
out in an application's storage."""
