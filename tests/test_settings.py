"""Settings models: placeholder smoke test until the validator suite lands."""

from __future__ import annotations

from transports.settings import Settings


def test_sender_is_username_when_it_is_an_address() -> None:
    settings = Settings.model_validate(
        {"smtp": {"host": "smtp.example.com", "username": "me@example.com"}}
    )
    assert settings.sender == "me@example.com"
