"""Tests of the deliberation protocol, the verdict service and its HTTP API."""
