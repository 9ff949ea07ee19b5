"""Deliberation: jurors, rebuttal rounds, the judge and the recorded verdict."""
