"""Offline jurors: small GGUF models served by local llama.cpp servers that Jury supervises."""
