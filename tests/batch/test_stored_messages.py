"""Message-IDs and stored messages in the batch engine keep build_message's rules."""

from __future__ import annotations

from pathlib import Path

from transports.message import build_message
from transports.settings import Settings
from tui.batch import _stored_outgoing, allocate_message_id
from tui.sendlog import QueueItem, SendLog


def _settings(**top: str) -> Settings:
    return Settings.model_validate(
        {"smtp": {"host": "smtp.example.com", "username": "billing@straße.example"}, **top}
    )


def test_message_ids_use_idna_2008_for_the_sender_domain() -> None:
    """Python's "idna" codec is IDNA 2003: straße became strasse, another domain."""
    message_id = allocate_message_id(_settings())
    assert message_id.endswith("@xn--strae-oqa.example>"), message_id


def test_a_stored_message_with_a_utf8_reply_to_is_resent_with_smtputf8(tmp_path: Path) -> None:
    settings = _settings(reply_to="zoë@example.test")
    outgoing = build_message(settings, to=["kunde@example.com"], subject="Rechnung", body="Hallo")
    assert outgoing.smtputf8  # build_message counts the Reply-To
    with SendLog(tmp_path / "log.sqlite3") as log:
        log.queue(
            "b1",
            [
                QueueItem(
                    job_id="j1",
                    message_id=outgoing.message_id,
                    recipients=outgoing.recipients,
                    subject="Rechnung",
                    sender=outgoing.sender,
                )
            ],
        )
        entry = log.entries(batch_id="b1")[0]
    again = _stored_outgoing(entry, outgoing.as_bytes())
    assert again.smtputf8
    assert again.as_bytes() == outgoing.as_bytes()
