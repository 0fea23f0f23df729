"""Where files live: flags beat environment variables beat platform dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.paths import config_path, data_dir, documents_dir


def test_config_path_default_honours_xdg(isolated_environment: Path) -> None:
    assert config_path() == isolated_environment / ".config" / "smtpdesk" / "settings.toml"


def test_config_path_env_then_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTPDESK_CONFIG", str(tmp_path / "env.toml"))
    assert config_path() == tmp_path / "env.toml"
    assert config_path(tmp_path / "flag.toml") == tmp_path / "flag.toml"
    assert config_path("~/x.toml") == Path.home() / "x.toml"


def test_data_dir_honours_xdg_and_override(
    isolated_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert data_dir() == isolated_environment / ".local" / "share" / "smtpdesk"
    monkeypatch.setenv("SMTPDESK_DATA_DIR", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d"


def test_documents_dir_precedence(
    isolated_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = isolated_environment / ".local" / "share" / "smtpdesk" / "documents"
    assert documents_dir() == default
    assert documents_dir(settings_folder=str(tmp_path / "s")) == tmp_path / "s"
    monkeypatch.setenv("SMTPDESK_DOCUMENTS", str(tmp_path / "e"))
    assert documents_dir(settings_folder=str(tmp_path / "s")) == tmp_path / "e"
    assert documents_dir(tmp_path / "f", str(tmp_path / "s")) == tmp_path / "f"


def test_nothing_is_created(isolated_environment: Path) -> None:
    config_path()
    data_dir()
    documents_dir()
    assert not (isolated_environment / ".config" / "smtpdesk").exists()
    assert not (isolated_environment / ".local" / "share" / "smtpdesk").exists()
