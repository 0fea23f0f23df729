"""The settings file: round trip, atomic writes, permissions, clear errors, .bak."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transports.settings import Protocol, Security, Settings
from tui.store import SettingsStore, StoreError, dump_settings

ROOT = Path(__file__).resolve().parents[2]


def full_settings(**changes: object) -> Settings:
    """Settings with every field away from its default."""
    data: dict[str, object] = {
        "protocol": "smtp",
        "preset": "custom",
        "from_name": "ACME Ltd — Müller",
        "copy_to": "archive@acme.example",
        "reply_to": "billing@acme.example",
        "timeout": 12.5,
        "smtp": {
            "host": "mail.acme.example",
            "port": 465,
            "security": "tls",
            "username": "ops",
            "from_address": "ops@server.local",
            "verify_tls": False,
            "ca_file": "/etc/ssl/acme.pem",
            "password_command": ["pass", "show", "mail/smtp; rm -rf /"],
        },
        "http": {"url": "https://relay.example/send"},
        "documents": {"folder": "/srv/docs", "fallback_font": "/usr/share/fonts/x.ttf"},
    }
    data.update(changes)
    return Settings.model_validate(data)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    settings = full_settings()
    store.save(settings)
    loaded = store.load()
    assert loaded == settings
    assert loaded.smtp.security is Security.TLS
    assert loaded.smtp.password_command == ["pass", "show", "mail/smtp; rm -rf /"]
    first = store.path.read_bytes()
    store.save(loaded)
    assert store.path.read_bytes() == first


def test_file_looks_like_the_design(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    store.save(full_settings(timeout=20))
    text = store.path.read_text()
    assert 'protocol = "smtp"' in text
    assert "timeout = 20\n" in text
    assert text.index("[smtp]") < text.index("[http]") < text.index("[documents]")
    assert 'security = "tls"' in text


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "nope" / "settings.toml")
    assert not store.exists()
    settings = store.load()
    assert settings.protocol is Protocol.SMTP
    assert settings.smtp.host == ""
    assert not (tmp_path / "nope").exists()


def test_permissions_of_new_file_and_folder(tmp_path: Path) -> None:
    os.umask(0o022)
    store = SettingsStore(tmp_path / "a" / "b" / "settings.toml")
    store.save(full_settings())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    store.save(full_settings(timeout=30))
    assert stat.S_IMODE(store.backup_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_existing_loose_file_becomes_0600_and_user_folder_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    path = folder / "settings.toml"
    path.write_text(dump_settings(full_settings()))
    os.chmod(path, 0o644)
    SettingsStore(path).save(full_settings(timeout=30))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_default_config_folder_is_tightened(isolated_environment: Path) -> None:
    folder = isolated_environment / ".config" / "smtpdesk"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    SettingsStore(folder / "settings.toml").save(full_settings())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_previous_version_is_kept_as_bak(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    store.save(full_settings(timeout=10))
    assert not store.backup_path.exists()
    store.save(full_settings(timeout=11))
    assert store.backup_path.name == "settings.toml.bak"
    assert "timeout = 10\n" in store.backup_path.read_text()
    assert "timeout = 11\n" in store.path.read_text()
    # Saving the same settings again does not lose the real previous version.
    store.save(full_settings(timeout=11))
    assert "timeout = 10\n" in store.backup_path.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "smtpdesk.toml"
    real.parent.mkdir()
    link = tmp_path / "settings.toml"
    link.symlink_to(real)
    SettingsStore(link).save(full_settings())
    assert link.is_symlink()
    assert SettingsStore(real).load() == full_settings()


def test_invalid_settings_are_never_saved(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    with pytest.raises(StoreError) as caught:
        store.save(Settings.unconfigured())
    assert "smtp.host" in str(caught.value)
    assert not store.exists()


def test_unwritable_folder_is_a_store_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(StoreError) as caught:
            SettingsStore(folder / "settings.toml").save(full_settings())
        assert str(folder / "settings.toml") in str(caught.value)
        assert "cannot write" in str(caught.value)
    finally:
        os.chmod(folder, 0o700)


BAD_FILES = [
    pytest.param(
        'protocol = "smtp"\n[smtp\nhost = "x"\n', "not a valid TOML file", "line 2", id="toml"
    ),
    pytest.param(
        '[smtp]\nhostt = "mail.example.com"\nusername = "me@example.com"\n',
        "smtp.hostt",
        "did you mean 'host'?",
        id="unknown-key",
    ),
    pytest.param(
        'timout = 20\n[smtp]\nhost = "x.example"\n',
        "timout",
        "did you mean 'timeout'?",
        id="unknown-top-key",
    ),
    pytest.param(
        '[smtp]\nhost = "mail.example.com"\nport = "587"\nusername = "me@example.com"\n',
        "smtp.port",
        'valid integer (got "587", a string)',
        id="wrong-type",
    ),
    pytest.param(
        '[smtp]\nhost = "mail.example.com"\nverify_tls = "yes"\nusername = "me@example.com"\n',
        "smtp.verify_tls",
        "valid boolean",
        id="wrong-type-bool",
    ),
    pytest.param(
        '[smtp]\nhost = "mail.example.com"\nport = 70000\nusername = "me@example.com"\n',
        "smtp.port",
        "between 1 and 65535",
        id="invalid-value",
    ),
    pytest.param(
        '[smtp]\nhost = 2026-11-27\nusername = "me@example.com"\n',
        "smtp.host",
        "date/time 2026-11-27",
        id="date",
    ),
    pytest.param('[smtp]\nusername = "me@example.com"\n', "smtp.host", "is required", id="no-host"),
    pytest.param("smtp = 5\n", "smtp", "", id="section-not-table"),
    pytest.param(b'from_name = "\xff"\n', "not UTF-8", "", id="not-utf8"),
]


@pytest.mark.parametrize(("content", "key", "problem"), BAD_FILES)
def test_bad_file_is_a_clear_error_and_untouched(
    tmp_path: Path, content: str | bytes, key: str, problem: str
) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "settings.toml"
    raw = content.encode() if isinstance(content, str) else content
    path.write_bytes(raw)
    before = path.stat()
    with pytest.raises(StoreError) as caught:
        SettingsStore(path).load()
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert key in message
    assert problem in message
    assert "Traceback" not in message and "pydantic" not in message
    assert caught.value.path == path
    assert path.read_bytes() == raw
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in folder.iterdir()) == ["settings.toml"]


def test_problems_are_listed_by_key(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[smtp]\nhost = "has space"\nport = 0\nusername = "me@example.com"\n')
    with pytest.raises(StoreError) as caught:
        SettingsStore(path).load()
    keys = [key for key, _ in caught.value.problems]
    assert keys == ["smtp.host", "smtp.port"]
    assert len(str(caught.value).splitlines()) == 2


def test_saving_over_a_corrupt_file_keeps_it_as_bak(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("this is [not toml\n")
    store = SettingsStore(path)
    store.save(full_settings())
    assert store.backup_path.read_text() == "this is [not toml\n"
    assert store.load() == full_settings()


WRITER = """
import sys
from pathlib import Path
from transports.settings import Settings
from tui.store import SettingsStore

store = SettingsStore(Path(sys.argv[1]))
smtp = {"host": "mail.example.com", "username": "me@example.com"}
versions = [
    # A long value makes the write take several blocks (a path would be refused
    # beyond PATH_MAX; a scope has no such limit).
    Settings.model_validate({"timeout": 10, "smtp": smtp, "oauth": {"scope": "A" * 30000}}),
    Settings.model_validate({"timeout": 20, "smtp": smtp, "oauth": {"scope": "B" * 10}}),
]
store.save(versions[0])
print("ready", flush=True)
i = 0
while True:
    i += 1
    store.save(versions[i % 2])
"""


def test_atomic_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.toml"
    rng = random.Random(1234)
    seen: set[float] = set()
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.005, 0.06))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        settings = SettingsStore(path).load()  # never half a file
        assert settings.timeout in {10, 20}
        assert settings.oauth.scope in {"A" * 30000, "B" * 10}
        assert (settings.timeout == 10) == (settings.oauth.scope == "A" * 30000)
        seen.add(settings.timeout)
        backup = SettingsStore(path.with_name("settings.toml.bak"))
        if backup.exists():
            assert backup.load().timeout in {10, 20}
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
