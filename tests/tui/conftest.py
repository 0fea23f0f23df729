"""Fixtures of the Pilot tests: a config path and a keyring in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from transports.settings import Settings
from tui.store import SettingsStore


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """Where the app under test keeps its settings file."""
    return tmp_path / "config" / "settings.toml"


def write_settings(path: Path, settings: Settings) -> None:
    """Save settings the way the app does (through the store)."""
    SettingsStore(path).save(settings)
