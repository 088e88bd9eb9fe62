"""Offline LLM question answering over stored window tokens (FAVOR's LLM side)."""
