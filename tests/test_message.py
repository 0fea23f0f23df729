"""Message building: headers, names, IDN, Reply-To, Cc, blind copy, attachments, SMTPUTF8."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from transports.message import Attachment, MessageError, Outgoing, build_message
from transports.settings import Settings


def settings(**top: Any) -> Settings:
    smtp = top.pop("smtp", {})
    return Settings.model_validate(
        {"smtp": {"host": "smtp.example.com", "username": "billing@acme.example", **smtp}, **top}
    )


def build(config: Settings | None = None, **kwargs: Any) -> Outgoing:
    defaults: dict[str, Any] = {
        "to": ["customer@example.test"],
        "subject": "Invoice 2026-042",
        "body": "Dear customer,\nplease find attached our invoice.\n",
    }
    return build_message(config or settings(), **{**defaults, **kwargs})


def parsed(outgoing: Outgoing) -> EmailMessage:
    """The message as a receiver parses it from the wire bytes."""
    return message_from_bytes(outgoing.as_bytes(), policy=policy.default)


def all_header_text(message: EmailMessage) -> str:
    """Every header of every MIME part, decoded, as one text."""
    return "\n".join(f"{name}: {value}" for part in message.walk() for name, value in part.items())


def test_standard_headers_are_present_and_well_formed() -> None:
    outgoing = build(settings(from_name="ACME Ltd"), message_id="<fixed@acme.example>")
    message = parsed(outgoing)
    assert message["From"] == "ACME Ltd <billing@acme.example>"
    assert message["To"] == "customer@example.test"
    assert message["Subject"] == "Invoice 2026-042"
    assert message["Message-ID"] == "<fixed@acme.example>" == outgoing.message_id
    assert message["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == (
        "Dear customer,\nplease find attached our invoice.\n"
    )
    assert outgoing.sender == "billing@acme.example"


def test_generated_message_id_uses_the_sender_domain() -> None:
    outgoing = build()
    assert outgoing.message_id.startswith("<")
    assert outgoing.message_id.endswith("@acme.example>")
    assert build().message_id != outgoing.message_id


def test_wire_format_is_crlf_with_short_lines() -> None:
    data = build(body="word " * 400).as_bytes()
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    "name", ["Zoë Müller", "Ωμέγα Ltd", "Привет", "Müller, Zoë & Co.", 'A "B" C']
)
def test_display_names_with_accents_round_trip_in_ascii(name: str) -> None:
    outgoing = build(settings(from_name=name))
    assert outgoing.smtputf8 is False
    assert outgoing.as_bytes().isascii()
    sender = parsed(outgoing)["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (name, "billing@acme.example")


def test_idn_recipient_domain_goes_out_in_idna_2008_form() -> None:
    """straße.example is xn--strae-oqa.example, not strasse.example (IDNA 2003)."""
    outgoing = build(to=["kunde@straße.example"], cc=["info@bücher.example"])
    assert outgoing.recipients == ("kunde@xn--strae-oqa.example", "info@xn--bcher-kva.example")
    message = parsed(outgoing)
    assert message["To"] == "kunde@xn--strae-oqa.example"
    assert message["Cc"] == "info@xn--bcher-kva.example"
    assert outgoing.smtputf8 is False
    assert outgoing.as_bytes().isascii()


def test_idn_sender_domain() -> None:
    outgoing = build(settings(smtp={"username": "zoe@bücher.example"}))
    assert outgoing.sender == "zoe@xn--bcher-kva.example"
    assert parsed(outgoing)["From"] == "zoe@xn--bcher-kva.example"
    assert outgoing.message_id.endswith("@xn--bcher-kva.example>")


def test_reply_to_is_set_when_configured() -> None:
    message = parsed(build(settings(reply_to="accounts@acme.example")))
    assert message["Reply-To"] == "accounts@acme.example"
    assert parsed(build())["Reply-To"] is None


def test_reply_to_with_an_idn_domain_is_a_real_address() -> None:
    """Not an encoded-word inside the address, which no client could reply to."""
    outgoing = build(settings(reply_to="billing@bücher.example"))
    assert parsed(outgoing)["Reply-To"] == "billing@xn--bcher-kva.example"
    assert b"=?utf-8?" not in outgoing.as_bytes()


def test_cc_is_a_header_and_in_the_envelope() -> None:
    outgoing = build(to=["a@example.test"], cc=["b@example.test", "c@example.test"])
    assert parsed(outgoing)["Cc"] == "b@example.test, c@example.test"
    assert outgoing.recipients == ("a@example.test", "b@example.test", "c@example.test")


def test_blind_copy_is_only_in_the_envelope() -> None:
    outgoing = build(
        settings(copy_to="archive@acme.example", reply_to="accounts@acme.example"),
        cc=["boss@example.test"],
        attachments=[Attachment("invoice.pdf", b"%PDF-1.7")],
    )
    assert outgoing.recipients[-1] == "archive@acme.example"
    message = parsed(outgoing)
    assert "archive@acme.example" not in all_header_text(message)
    assert b"archive@acme.example" not in outgoing.as_bytes()
    assert message["Bcc"] is None


def test_recipients_are_deduplicated_case_insensitively() -> None:
    outgoing = build(
        settings(copy_to="Archive@Acme.example"),
        to=["customer@example.test", "CUSTOMER@example.test"],
        cc=["archive@acme.example"],
    )
    assert outgoing.recipients == ("customer@example.test", "archive@acme.example")


@pytest.mark.parametrize(
    ("attachment", "content_type"),
    [
        (Attachment("invoice.pdf", b"%PDF-1.7\n\x00\xff"), "application/pdf"),
        (Attachment("ledger.csv", b"a,b\r\n1,2\r\n"), "text/csv"),
        (Attachment("logo.PNG", b"\x89PNG\r\n\x1a\n"), "image/png"),
        (
            Attachment("report.xlsx", b"PK\x03\x04"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (Attachment("README", b"plain"), "application/octet-stream"),
        (Attachment("data.bin", b"\x00\x01", "application/x-custom"), "application/x-custom"),
    ],
)
def test_attachment_mime_types_and_bytes(attachment: Attachment, content_type: str) -> None:
    message = parsed(build(attachments=[attachment]))
    assert message.get_content_type() == "multipart/mixed"
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == content_type
    assert part.get_filename() == attachment.filename
    assert part.get_payload(decode=True) == attachment.data


def test_attachment_with_a_non_ascii_name_round_trips() -> None:
    data = bytes(range(256)) * 40
    outgoing = build(attachments=[Attachment("Rechnung Müller €.pdf", data)])
    assert outgoing.as_bytes().isascii()
    [part] = list(parsed(outgoing).iter_attachments())
    assert part.get_filename() == "Rechnung Müller €.pdf"
    assert part.get_payload(decode=True) == data


def test_body_with_accents_keeps_its_text() -> None:
    message = parsed(build(body="Grüße aus Köln – 100 €\n"))
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Grüße aus Köln – 100 €\n"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (
            {"to": ["a@example.test\r\nBcc: victim@example.test"]},
            "to: must not contain a line break",
        ),
        ({"to": ["a@example.test\n"]}, "to: must not contain a line break"),
        ({"cc": ["b@example.test\rX"]}, "cc: must not contain a line break"),
        (
            {"subject": "Invoice\r\nBcc: victim@example.test"},
            "subject: must not contain a line break",
        ),
        ({"subject": "Invoice\n"}, "subject: must not contain a line break"),
        ({"subject": "Invoice\x1b[2J"}, "subject: must not contain control characters"),
        (
            {"attachments": [Attachment("a\r\nContent-Type: text/html.pdf", b"x")]},
            "attachment name: must not contain a line break",
        ),
        ({"extra_headers": [("X-Document", "INV-1\r\nBcc: v@example.test")]}, "header X-Document"),
        ({"to": []}, "to: at least one recipient is required"),
        ({"to": ["not an address"]}, "to: 'not an address' is not a valid email address"),
        ({"cc": ["@example.test"]}, "cc: '@example.test' is not a valid email address"),
        ({"body": "a\x00b"}, "body: must not contain a NUL character"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(MessageError) as caught:
        build(**kwargs)
    assert str(caught.value).startswith(error)


def test_line_break_in_the_sender_name_is_refused_by_the_settings() -> None:
    """The name comes from the settings, whose validator rejects CR/LF naming the field."""
    with pytest.raises(ValueError, match="from_name"):
        settings(from_name="ACME\r\nBcc: victim@example.test")


def test_no_sender_configured() -> None:
    with pytest.raises(MessageError, match="^from: no sender address is configured"):
        build(Settings.unconfigured())


def test_extra_headers_are_added() -> None:
    message = parsed(build(extra_headers=[("X-Document", "INV-2026-042")]))
    assert message["X-Document"] == "INV-2026-042"


@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        ({}, {"to": ["jörg@example.test"]}),
        ({}, {"to": ["a@example.test"], "cc": ["zoë@example.test"]}),
        ({"reply_to": "müller@example.test"}, {}),
        ({"smtp": {"username": "zoë@acme.example"}}, {}),
    ],
)
def test_smtputf8_is_needed_for_a_non_ascii_local_part(
    config: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    """The headers then carry raw UTF-8 (RFC 6532) and the flag says the server must allow it."""
    outgoing = build(settings(**config), **kwargs)
    assert outgoing.smtputf8 is True
    data = outgoing.as_bytes()
    assert not data.isascii()
    message = message_from_bytes(data, policy=policy.default)
    assert message["Subject"] == "Invoice 2026-042"


def test_smtputf8_is_needed_for_a_non_ascii_blind_copy_in_the_envelope_only() -> None:
    outgoing = build(settings(copy_to="архив@example.test"))
    assert outgoing.smtputf8 is True
    assert outgoing.recipients[-1] == "архив@example.test"
    assert "архив".encode() not in outgoing.as_bytes()


def test_smtputf8_is_not_needed_for_idn_domains_only() -> None:
    outgoing = build(settings(copy_to="a@bücher.example"), to=["kunde@straße.example"])
    assert outgoing.smtputf8 is False


def test_http_settings_send_from_the_reply_address() -> None:
    config = Settings.model_validate(
        {
            "protocol": "http",
            "reply_to": "billing@acme.example",
            "from_name": "ACME",
            "http": {"url": "https://relay.example/send"},
        }
    )
    outgoing = build(config)
    message = parsed(outgoing)
    assert outgoing.sender == "billing@acme.example"
    assert message["From"] == "ACME <billing@acme.example>"
    assert message["Reply-To"] == "billing@acme.example"


def test_as_bytes_is_built_once() -> None:
    outgoing = build()
    assert outgoing.as_bytes() is outgoing.as_bytes()
