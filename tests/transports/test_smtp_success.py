"""Successful exchanges: trust, TLS details, transcript, intact messages, many per connection."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from tests.smtpservers import Certs, Script, ScriptedFactory, SmtpServerFactory
from tests.transports.helpers import PASSWORD, USER, exchange, message
from transports.events import Direction, Step
from transports.message import Attachment, build_message
from transports.smtp import SmtpTransport, dot_stuff, parse_queue_id


async def test_starttls_auth_transcript_in_order(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings, PASSWORD, [message(settings)])
    assert run.failure is None, run.transcript()
    steps = list(dict.fromkeys(event.step for event in run.events))
    assert steps == [
        Step.RESOLVE,
        Step.CONNECT,
        Step.GREETING,
        Step.EHLO,
        Step.STARTTLS,
        Step.TLS,
        Step.AUTH,
        Step.MAIL,
        Step.RCPT,
        Step.DATA,
        Step.QUIT,
    ]
    texts = run.texts()
    assert texts.count("EHLO [127.0.0.1]") == 2 or sum(t.startswith("EHLO ") for t in texts) == 2
    assert "AUTH PLAIN <redacted>" in texts
    assert any(t.startswith("235 ") for t in texts)
    assert any(t.startswith("354 ") for t in texts)
    assert any(t.endswith("sent, waiting for the server's reply") for t in texts)
    # Everything after STARTTLS travelled encrypted, nothing before it did.
    starttls = next(i for i, e in enumerate(run.events) if e.text == "STARTTLS")
    assert not any(e.encrypted for e in run.events[: starttls + 1])
    assert all(e.encrypted for e in run.events[starttls + 1 :])
    assert all(
        a.elapsed_ms <= b.elapsed_ms for a, b in zip(run.events, run.events[1:], strict=False)
    )
    result = run.results[0]
    assert result.queue_id == "Q0001"
    assert result.reply == "250 2.0.0 OK: queued as Q0001"
    assert result.accepted == ("you@example.test",)
    assert server.handler.attempted_auth == [f"AUTH PLAIN {USER}"]


async def test_implicit_tls_trusted_via_ca_file(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("tls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings, PASSWORD, [message(settings)])
    assert run.failure is None, run.transcript()
    greeting = next(e for e in run.events if e.step is Step.GREETING)
    assert greeting.encrypted and greeting.text.startswith("220 ")
    assert any("certificate verified" in t for t in run.texts())
    assert len(server.handler.messages) == 1


async def test_self_signed_trusted_through_its_own_pem(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", cert=certs.self_signed, accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.self_signed.chain_pem)
    run = await exchange(settings, PASSWORD, [message(settings)])
    assert run.failure is None, run.transcript()


async def test_verify_off_still_describes_the_certificate(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", cert=certs.self_signed, accounts={USER: PASSWORD})
    settings = server.settings(username=USER, verify_tls=False)
    transport = SmtpTransport(settings, PASSWORD, lambda event: None)
    async with transport:
        info = transport.tls_info
    assert info is not None
    assert info.verified is False
    assert "self-signed.smtpdesk.test" in info.subject
    assert info.subject == info.issuer
    assert "IP:127.0.0.1" in info.names and "DNS:localhost" in info.names
    assert info.not_after is not None
    assert info.version.startswith("TLSv1.")
    run = await exchange(settings)
    assert any("NOT verified" in t for t in run.texts())
    assert any("self-signed.smtpdesk.test" in t for t in run.texts() if "subject" in t)


async def test_message_arrives_intact_with_blind_copy_in_envelope_only(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(
        username=USER,
        ca_file=certs.ca_pem,
        copy_to="archive@example.test",
        reply_to="billing@example.test",
        from_name="ACME Ltd",
    )
    pdf = bytes(range(256)) * 40 + b"\r\n.\r\n.leading dot\n"
    outgoing = build_message(
        settings,
        to=["customer@example.test"],
        cc=["accounts@example.test"],
        subject="Invoice 2026-042 — Müller",
        body=".a line starting with a dot\nZoë pays €12.50\n",
        attachments=[Attachment("invoice-042.pdf", pdf)],
    )
    run = await exchange(settings, PASSWORD, [outgoing])
    assert run.failure is None, run.transcript()
    received = server.handler.messages[0]
    assert received.mail_from == USER
    assert received.rcpt_tos == [
        "customer@example.test",
        "accounts@example.test",
        "archive@example.test",
    ]
    parsed = message_from_bytes(received.content, policy=default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"] == "ACME Ltd <me@example.test>"
    assert parsed["To"] == "customer@example.test"
    assert parsed["Cc"] == "accounts@example.test"
    assert parsed["Reply-To"] == "billing@example.test"
    assert parsed["Subject"] == "Invoice 2026-042 — Müller"
    assert parsed["Message-ID"] == outgoing.message_id == run.results[0].message_id
    assert "archive@example.test" not in received.content.decode("utf-8", "replace")
    assert "Bcc" not in parsed
    body = parsed.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text == ".a line starting with a dot\nZoë pays €12.50\n"
    attachments = list(parsed.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_filename() == "invoice-042.pdf"
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_content() == pdf


async def test_many_messages_on_one_connection(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server(
        "starttls",
        accounts={USER: PASSWORD},
        refuse_recipients={"gone@example.test": "550 5.1.1 no such user"},
    )
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    outgoing = [
        message(settings, to="a@example.test", subject="one"),
        message(settings, to="gone@example.test", subject="refused"),
        message(settings, to="b@example.test", subject="three"),
    ]
    events: list[object] = []
    results = []
    failures = []
    transport = SmtpTransport(settings, PASSWORD, events.append)
    async with transport:
        for item in outgoing:
            try:
                results.append(await transport.send(item))
            except Exception as exc:  # noqa: BLE001 - collected and checked below
                failures.append(exc)
    assert [r.queue_id for r in results] == ["Q0001", "Q0002"]
    assert len(failures) == 1
    assert [m.rcpt_tos for m in server.handler.messages] == [["a@example.test"], ["b@example.test"]]
    # One login, one connection: AUTH happened once, RSET after the refused one.
    assert server.handler.attempted_auth == [f"AUTH PLAIN {USER}"]
    assert "RSET" in server.handler.commands


async def test_partially_refused_recipients(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server(
        "starttls",
        accounts={USER: PASSWORD},
        refuse_recipients={"gone@example.test": "550 5.1.1 <gone@example.test>: no such user"},
    )
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    outgoing = build_message(
        settings, to=["a@example.test", "gone@example.test"], subject="s", body="b"
    )
    run = await exchange(settings, PASSWORD, [outgoing])
    assert run.failure is None, run.transcript()
    result = run.results[0]
    assert result.accepted == ("a@example.test",)
    assert result.refused == {"gone@example.test": "550 5.1.1 <gone@example.test>: no such user"}
    assert server.handler.messages[0].rcpt_tos == ["a@example.test"]


async def test_no_username_means_no_auth(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(from_address=USER, ca_file=certs.ca_pem)
    run = await exchange(settings, None, [message(settings)])
    assert run.failure is None, run.transcript()
    assert server.handler.attempted_auth == []
    assert not any(e.step is Step.AUTH for e in run.events)


async def test_login_and_cram_md5_mechanisms_are_redacted(
    scripted_server: ScriptedFactory,
) -> None:
    for ehlo, replies, mechanism in (
        (
            "250-scripted\n250 AUTH LOGIN",
            {"AUTH": "334 UGFzc3dvcmQ6", "AUTH+": "235 2.7.0 ok"},
            "LOGIN",
        ),
        (
            "250-scripted\n250 AUTH CRAM-MD5",
            {"AUTH": "334 PDEyMzQ1QHNjcmlwdGVkPg==", "AUTH+": "235 2.7.0 ok"},
            "CRAM-MD5",
        ),
    ):
        server = await scripted_server(Script(ehlo=ehlo, replies=dict(replies)))
        settings = server.settings()
        run = await exchange(settings)
        assert run.failure is None, run.transcript()
        outs = [e.text for e in run.events if e.direction is Direction.OUT]
        assert any(t.startswith(f"AUTH {mechanism}") for t in outs)
        assert "<redacted>" in outs
        assert server.verbs().count("AUTH") == 1


async def test_security_none_to_a_plain_relay(smtp_server: SmtpServerFactory) -> None:
    server = await smtp_server("plain")
    settings = server.settings(from_address=USER)
    run = await exchange(settings, None, [message(settings)])
    assert run.failure is None, run.transcript()
    assert not any(e.encrypted for e in run.events)
    assert any("not encrypted" in t for t in run.texts())


def test_queue_id_formats() -> None:
    assert parse_queue_id("2.0.0 Ok: queued as 4XyzAbC12") == "4XyzAbC12"
    assert parse_queue_id("OK id=1tGz2B-000Abc-Xy") == "1tGz2B-000Abc-Xy"
    assert (
        parse_queue_id("2.0.0 OK  1732700000 5b1f17b1804b1-434a1b2c3d4si123456.0 - gsmtp")
        == "5b1f17b1804b1-434a1b2c3d4si123456.0"
    )
    assert (
        parse_queue_id("2.0.0 OK <DB9PR01MB1234.eurprd01.prod.outlook.com> [Hostname=DB9]")
        == "DB9PR01MB1234.eurprd01.prod.outlook.com"
    )
    assert (
        parse_queue_id("Ok 0100018c5a6b7c8d-1234abcd-5678-90ef-000000")
        == "0100018c5a6b7c8d-1234abcd-5678-90ef-000000"
    )
    assert parse_queue_id("OK") == ""


def test_dot_stuffing() -> None:
    assert dot_stuff(b"a\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n.\r\n"
