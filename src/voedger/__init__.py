"""A Python implementation of the Voedger platform."""

__version__ = "0.1.0"
