"""Tests of the built-in sandbox (tui/sandbox.py)."""
