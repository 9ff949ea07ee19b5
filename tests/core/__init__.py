"""Tests of configuration, settings and migrations."""
