"""The record of the last successful test."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from transports.settings import Settings
from tui.verified import fingerprint, is_verified, last_success, record_path, record_success


def settings(**smtp: object) -> Settings:
    section: dict[str, object] = {"host": "mail.example.com", "username": "me@example.com"}
    section.update(smtp)
    return Settings.model_validate({"smtp": section})


def test_never_tested() -> None:
    assert last_success() is None
    assert not is_verified(settings())


def test_record_and_match(isolated_environment: Path) -> None:
    when = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    record_success(settings(), when=when)
    path = record_path()
    assert path == isolated_environment / ".local" / "share" / "smtpdesk" / "last-test.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = last_success()
    assert record is not None
    assert record.when == when
    assert record.fingerprint == fingerprint(settings())
    assert record.summary == {
        "protocol": "smtp",
        "preset": "custom",
        "host": "mail.example.com",
        "port": 587,
        "security": "starttls",
    }
    assert record.describe() == "mail.example.com:587 starttls"
    assert is_verified(settings())


def test_any_sending_change_unverifies() -> None:
    record_success(settings())
    assert not is_verified(settings(port=2525))
    assert not is_verified(settings(username="other@example.com"))
    assert not is_verified(settings(verify_tls=False))
    changed = Settings.model_validate(
        {
            "copy_to": "a@example.com",
            "smtp": {"host": "mail.example.com", "username": "me@example.com"},
        }
    )
    assert not is_verified(changed)


def test_documents_and_timeout_form_do_not_matter() -> None:
    record_success(settings())
    same = Settings.model_validate(
        {
            "timeout": 20.0,
            "documents": {"folder": "/srv/docs"},
            "smtp": {"host": "mail.example.com", "username": "me@example.com"},
        }
    )
    assert is_verified(same)


def test_fingerprint_is_stable_and_has_no_secret() -> None:
    assert fingerprint(settings()) == fingerprint(settings())
    assert len(fingerprint(settings())) == 64
    assert fingerprint(settings()) != fingerprint(settings(host="mail2.example.com"))


def test_unreadable_record_is_never_tested(isolated_environment: Path) -> None:
    path = record_path()
    path.parent.mkdir(parents=True)
    for junk in ["", "{", "[]", json.dumps({"time": "yesterday", "fingerprint": "x"})]:
        path.write_text(junk)
        assert last_success() is None
        assert not is_verified(settings())
