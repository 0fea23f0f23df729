"""8-bit content and servers without 8BITMIME (RFC 6152).

The message builder writes a non-ASCII text body as quoted-printable, so the
message is 7-bit and any server takes it; an 8-bit message built elsewhere is
refused before MAIL FROM by a server that does not announce 8BITMIME.
"""

from __future__ import annotations

from email import message_from_bytes, policy

from tests.smtpservers import Script, ScriptedFactory
from tests.transports.helpers import PASSWORD, exchange, message
from transports.errors import FailureClass
from transports.events import Step
from transports.message import Outgoing

NO_8BITMIME = "250-scripted.smtpdesk.test\n250-AUTH PLAIN LOGIN\n250 SIZE 10485760"
TEXT = "Grüße aus Köln – 100 €\nZoë Müller\n"


async def test_non_ascii_body_reaches_a_server_without_8bitmime_as_7bit(
    scripted_server: ScriptedFactory,
) -> None:
    server = await scripted_server(Script(ehlo=NO_8BITMIME))
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings, body=TEXT)])
    assert run.failure is None, run.transcript()
    [body] = server.bodies
    assert body.isascii()
    mail = next(line for line in server.lines if line.startswith(b"MAIL"))
    assert b"BODY=8BITMIME" not in mail
    received = message_from_bytes(body.removesuffix(b".\r\n"), policy=policy.default)
    part = received.get_body(("plain",))
    assert part is not None
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_content().replace("\r\n", "\n") == TEXT


async def test_8bit_message_is_refused_before_mail_without_8bitmime(
    scripted_server: ScriptedFactory,
) -> None:
    server = await scripted_server(Script(ehlo=NO_8BITMIME))
    settings = server.settings()
    built = message(settings, body=TEXT)
    built.message.set_content(TEXT, subtype="plain", charset="utf-8", cte="8bit")
    eight_bit = Outgoing(built.message, built.sender, built.recipients, built.message_id)
    assert not eight_bit.as_bytes().isascii()
    run = await exchange(settings, PASSWORD, [eight_bit])
    assert run.failure is not None
    assert run.failure.failure_class is FailureClass.MESSAGE_REJECTED
    assert run.failure.step is Step.MAIL
    assert "8BITMIME" in run.failure.title
    assert "MAIL" not in server.verbs()


async def test_8bit_message_is_announced_to_a_server_with_8bitmime(
    scripted_server: ScriptedFactory,
) -> None:
    server = await scripted_server(Script())
    settings = server.settings()
    built = message(settings, body=TEXT)
    built.message.set_content(TEXT, subtype="plain", charset="utf-8", cte="8bit")
    eight_bit = Outgoing(built.message, built.sender, built.recipients, built.message_id)
    run = await exchange(settings, PASSWORD, [eight_bit])
    assert run.failure is None, run.transcript()
    mail = next(line for line in server.lines if line.startswith(b"MAIL"))
    assert b"BODY=8BITMIME" in mail
    assert TEXT.replace("\n", "\r\n").encode() in server.bodies[0]
