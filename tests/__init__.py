"""Jury's test suite."""
