"""Asynchronous verdicts: the queue, the broker and the claims on verdict rows."""
