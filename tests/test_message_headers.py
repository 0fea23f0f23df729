"""Extra headers: the field name is checked too (header injection through the name)."""

from __future__ import annotations

import pytest

from transports.message import MessageError, build_message
from transports.settings import Settings


def build(name: str, value: str = "INV-1") -> bytes:
    settings = Settings.model_validate(
        {"smtp": {"host": "smtp.example.com", "username": "billing@acme.example"}}
    )
    outgoing = build_message(
        settings,
        to=["customer@example.test"],
        subject="Invoice",
        body="Hello\n",
        extra_headers=[(name, value)],
    )
    return outgoing.as_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "X-Document\r\nBcc",
        "X-Document\nBcc",
        "X-Doc: injected\r\nX",
        "X Document",
        "X-Docüment",
        "",
        "X" * 77,
        "Bcc",
        "bcc",
        "To",
        "From",
        "Reply-To",
        "Content-Type",
        "Content-Foo",
        "MIME-Version",
    ],
)
def test_bad_or_reserved_header_names_are_refused(name: str) -> None:
    with pytest.raises(MessageError, match="^header "):
        build(name)


def test_a_valid_extra_header_name_is_kept() -> None:
    data = build("X-Document-Id", "INV-2026-042")
    assert b"\r\nX-Document-Id: INV-2026-042\r\n" in data
