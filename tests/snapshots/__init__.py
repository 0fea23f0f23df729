"""Snapshot tests of the TUI (pytest-textual-snapshot)."""
