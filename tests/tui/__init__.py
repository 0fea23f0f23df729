"""Pilot tests of the TUI at 80x24."""
