"""Queue ids of the servers a sysadmin meets besides Postfix, Exim, Gmail and Office 365."""

from __future__ import annotations

from transports.smtp import parse_queue_id


def test_sendmail_queue_id() -> None:
    reply = "2.0.0 4ARA1b2C012345 Message accepted for delivery"
    assert parse_queue_id(reply) == "4ARA1b2C012345"


def test_exchange_server_queue_id() -> None:
    reply = (
        "2.6.0 <a1b2c3@EX01.corp.example> [InternalId=1234567890, "
        "Hostname=EX01.corp.example] Queued mail for delivery"
    )
    assert parse_queue_id(reply) == "a1b2c3@EX01.corp.example"


def test_plain_acceptance_has_no_queue_id() -> None:
    assert parse_queue_id("2.0.0 Message accepted for delivery") == ""
    assert parse_queue_id("2.0.0 Ok") == ""
