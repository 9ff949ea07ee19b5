"""The verdict record and the use cases on it."""
