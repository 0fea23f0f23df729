"""Tests for tui.emailing."""
