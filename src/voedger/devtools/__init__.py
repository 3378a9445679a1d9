"""Tools for developers and tests: not part of the platform that users run."""
