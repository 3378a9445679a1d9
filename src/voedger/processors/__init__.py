"""Command, query, projector and job processors."""
