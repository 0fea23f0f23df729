"""Hostile SMTP servers: each ends in a classified failure with hints, in time, bounded.

Every server here is a raw-socket fake on loopback (``tests.hostile.server``);
the timeouts are 1 s, so a hang shows as a slow test, not a green one.
"""

from __future__ import annotations

import tracemalloc

import pytest

from tests.hostile.conftest import HostileFactory
from tests.hostile.helpers import SECRET, assert_classified, assert_clean, run, smtp_settings
from tests.hostile.server import (
    Close,
    Drip,
    Flood,
    Hostile,
    Send,
    Silent,
    StartTls,
    line,
)
from tests.smtpservers import Certs
from transports.errors import FailureClass
from transports.events import Direction, Step

F = FailureClass


# --- silence and slowness ---------------------------------------------------------------


async def test_greets_then_never_answers_ehlo(hostile: HostileFactory) -> None:
    server = await hostile(Hostile(replies={"EHLO": [(Silent(),)]}))
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.TIMEOUT, Step.EHLO, within=2.0)


async def test_never_greets(hostile: HostileFactory) -> None:
    server = await hostile(Hostile(greeting=(Silent(),)))
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.GREETING_TIMEOUT, Step.GREETING, within=2.0)


@pytest.mark.parametrize("where", ["greeting", "EHLO", "MAIL", "."])
async def test_slow_drip_times_out_per_step_not_per_byte(
    hostile: HostileFactory, where: str
) -> None:
    """One byte every 0.5 s: each byte is in time for a 1.5 s timeout, the reply never is."""
    drip = (Drip(line("250 2.0.0 a reply that takes half a minute to arrive"), 0.5),)
    if where == "greeting":
        script = Hostile(greeting=(Drip(line("220 hostile ESMTP slowly"), 0.5),))
    else:
        script = Hostile(replies={where: [drip]})
    server = await hostile(script)
    ran = await run(smtp_settings(server.port, timeout=1.5))
    expected = {"greeting": F.GREETING_TIMEOUT}.get(where, F.TIMEOUT)
    step = {"greeting": Step.GREETING, "EHLO": Step.EHLO, "MAIL": Step.MAIL}.get(where, Step.DATA)
    assert_classified(ran, expected, step, within=2.5)


# --- oversized and malformed replies -----------------------------------------------------

FIVE_MB = 5 * 1024 * 1024


@pytest.mark.parametrize(
    "flood",
    [
        Flood(b"250-" + b"X" * 1020 + b"\r\n", total=FIVE_MB),  # 5 MB of continuation lines
        Flood(b"250-" + b"Y" * 4092, total=FIVE_MB),  # one 5 MB line, no line end
        Flood(b"250-more\r\n"),  # a multiline reply that never ends (fast)
    ],
    ids=["lines", "one-line", "endless"],
)
async def test_huge_ehlo_reply_is_bounded(hostile: HostileFactory, flood: Flood) -> None:
    server = await hostile(Hostile(replies={"EHLO": [(flood,)]}))
    tracemalloc.start()
    try:
        ran = await run(smtp_settings(server.port))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # "Response too long" once aiosmtplib's buffer is full, or the per-step
    # timeout first when the reply trickles in as small packets.
    assert_classified(ran, {F.PROTOCOL, F.TIMEOUT}, Step.EHLO, within=2.0)
    # The client keeps at most aiosmtplib's 32 KiB response buffer; the peak
    # includes the server's own chunks and the test's bookkeeping.
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while the server sent 5 MB"


async def test_endless_slow_multiline_reply_times_out(hostile: HostileFactory) -> None:
    server = await hostile(
        Hostile(replies={"EHLO": [(Flood(b"250-still going\r\n", pause=0.05),)]})
    )
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, {F.TIMEOUT, F.PROTOCOL}, Step.EHLO, within=2.0)


@pytest.mark.parametrize("verb", ["greeting", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "."])
async def test_reply_without_line_end_then_close(hostile: HostileFactory, verb: str) -> None:
    answer = (Send(b"250 2.0.0 OK but no line end"), Close())
    script = Hostile(greeting=answer) if verb == "greeting" else Hostile(replies={verb: [answer]})
    server = await hostile(script)
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.DISCONNECTED, within=2.0)


async def test_non_utf8_bytes_are_shown_not_crashed_on(hostile: HostileFactory) -> None:
    server = await hostile(
        Hostile(
            greeting=b"220 h\xf6stile \xff\xfe ESMTP\r\n",
            replies={
                "EHLO": [b"250-h\xe9llo \x80\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"],
                "MAIL": [b"550 5.7.1 sender \xc3\x28 refused \xed\xa0\x80\r\n"],
            },
        )
    )
    ran = await run(smtp_settings(server.port))
    failure = assert_classified(ran, F.SENDER_REJECTED, Step.MAIL, within=2.0)
    assert "refused" in failure.reply_text
    assert "\ufffd" in failure.reply_text  # the undecodable bytes, visibly replaced
    assert any("h\ufffdllo" in text for text in ran.texts())


async def test_non_utf8_success_reply(hostile: HostileFactory) -> None:
    server = await hostile(Hostile(replies={".": [b"250 2.0.0 queued \xff\xfe as Q1\r\n"]}))
    ran = await run(smtp_settings(server.port))
    assert ran.outcome.ok, ran.outcome
    assert ran.outcome.result is not None
    ran.outcome.result.reply.encode("utf-8")
    assert_clean(ran)


OUT_OF_RANGE = [b"999 what", b"000 nothing", b"abc no code", b"-25 negative", b"2_5 odd", b"1 x"]


@pytest.mark.parametrize("reply", OUT_OF_RANGE)
@pytest.mark.parametrize("verb", ["greeting", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "."])
async def test_reply_code_outside_2xx_5xx(hostile: HostileFactory, verb: str, reply: bytes) -> None:
    answer = reply + b"\r\n"
    script = Hostile(greeting=answer) if verb == "greeting" else Hostile(replies={verb: [answer]})
    server = await hostile(script)
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.PROTOCOL, within=2.0)


@pytest.mark.parametrize(
    ("verb", "reply"),
    [
        ("greeting", b"250 I am not a greeting"),
        ("EHLO", b"354 go ahead"),
        ("AUTH", b"250 fine"),
        ("MAIL", b"354 go ahead"),
        ("RCPT", b"334 VXNlcm5hbWU6"),
        ("DATA", b"250 OK"),
        (".", b"354 more please"),
    ],
)
async def test_success_code_at_the_wrong_step_is_a_protocol_failure(
    hostile: HostileFactory, verb: str, reply: bytes
) -> None:
    """A 2xx/3xx where another one belongs is not a refusal (no "wrong password" hint)."""
    answer = reply + b"\r\n"
    script = Hostile(greeting=answer) if verb == "greeting" else Hostile(replies={verb: [answer]})
    server = await hostile(script)
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.PROTOCOL, within=2.0)


@pytest.mark.parametrize(
    "challenge",
    [b"334 not base64 \xc3\xa4 !!!", b"334 YWJ", b"334 \xff\xfe", b"334 Zm9v\x1b[2J"],
    ids=["words", "bad-padding", "bytes", "escape"],
)
async def test_cram_md5_challenge_that_is_not_base64(
    hostile: HostileFactory, challenge: bytes
) -> None:
    server = await hostile(
        Hostile(
            replies={
                "EHLO": [line("250-hostile\r\n250 AUTH CRAM-MD5")],
                "AUTH": [challenge + b"\r\n"],
            }
        )
    )
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.PROTOCOL, Step.AUTH, within=2.0)
    assert server.verbs() == ["EHLO", "AUTH"]  # nothing answered to the challenge


@pytest.mark.parametrize(
    "size", ["²³", "9" * 5000, "-1", "1e9"], ids=["super", "5000-digits", "neg", "float"]
)
async def test_unreadable_size_is_ignored(hostile: HostileFactory, size: str) -> None:
    server = await hostile(
        Hostile(replies={"EHLO": [line(f"250-hostile\r\n250-SIZE {size}\r\n250 AUTH PLAIN")]})
    )
    ran = await run(smtp_settings(server.port))
    assert ran.outcome.ok, ran.outcome
    assert_clean(ran)


# --- STARTTLS ----------------------------------------------------------------------------

EHLO_STARTTLS = line("250-hostile.smtpdesk.test\r\n250-STARTTLS\r\n250 8BITMIME")
EHLO_AUTH = line("250-hostile.smtpdesk.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")


async def test_starttls_answered_454(hostile: HostileFactory, certs: Certs) -> None:
    server = await hostile(
        Hostile(
            replies={"EHLO": [EHLO_STARTTLS], "STARTTLS": [line("454 4.7.0 TLS not available")]}
        )
    )
    ran = await run(smtp_settings(server.port, security="starttls", ca_file=certs.ca_pem))
    assert_classified(ran, F.STARTTLS_REFUSED, Step.STARTTLS, within=2.0)
    assert "AUTH" not in server.verbs() and "MAIL" not in server.verbs()
    assert not any(SECRET.encode() in raw for raw in server.lines)


async def test_auth_offered_only_after_tls_works(hostile: HostileFactory, certs: Certs) -> None:
    server = await hostile(
        Hostile(
            replies={
                "EHLO": [EHLO_STARTTLS, EHLO_AUTH],
                "STARTTLS": [(Send(line("220 2.0.0 ready")), StartTls(certs.good.context()))],
            }
        )
    )
    ran = await run(smtp_settings(server.port, security="starttls", ca_file=certs.ca_pem))
    assert ran.outcome.ok, ran.outcome
    assert server.verbs()[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]
    assert any(e.step is Step.AUTH and e.encrypted for e in ran.events)
    assert_clean(ran)


INJECTED = line("250-INJECTED.evil\r\n250 INJECTED-NO-AUTH") + line("235 2.7.0 INJECTED auth ok")


async def test_plaintext_pushed_before_tls_is_discarded(
    hostile: HostileFactory, certs: Certs
) -> None:
    """STARTTLS response injection (CVE-2011-0411 style): the extra lines are never replies."""
    server = await hostile(
        Hostile(
            replies={
                "EHLO": [EHLO_STARTTLS, EHLO_AUTH],
                "STARTTLS": [
                    (Send(line("220 2.0.0 ready") + INJECTED), StartTls(certs.good.context()))
                ],
            }
        )
    )
    ran = await run(smtp_settings(server.port, security="starttls", ca_file=certs.ca_pem))
    assert ran.outcome.ok, ran.outcome
    assert not any("INJECTED" in text for text in ran.texts())
    # The session after TLS is in step: EHLO got the real capabilities, AUTH was answered.
    assert server.verbs()[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]


async def test_starttls_then_plaintext_instead_of_a_handshake(
    hostile: HostileFactory, certs: Certs
) -> None:
    """A server that says 220 and then keeps talking in plain text: a TLS failure, no AUTH."""
    server = await hostile(
        Hostile(
            replies={
                "EHLO": [EHLO_STARTTLS],
                "STARTTLS": [
                    (Send(line("220 2.0.0 ready")), Send(line("250 plain text again")), Silent())
                ],
            }
        )
    )
    ran = await run(smtp_settings(server.port, security="starttls", ca_file=certs.ca_pem))
    assert_classified(ran, {F.TLS_HANDSHAKE, F.TLS_WRONG_VERSION, F.TIMEOUT}, within=2.0)
    assert not any(SECRET.encode() in raw for raw in server.lines)


# --- closing at the worst moment ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "step"),
    [
        ("EHLO", Step.EHLO),
        ("AUTH", Step.AUTH),
        ("MAIL", Step.MAIL),
        ("RCPT", Step.RCPT),
        ("DATA", Step.DATA),
        ("BODY", Step.DATA),
        (".", Step.DATA),
    ],
)
async def test_close_mid_session(hostile: HostileFactory, key: str, step: Step) -> None:
    server = await hostile(Hostile(replies={key: [(Close(),)]}))
    ran = await run(smtp_settings(server.port))
    failure = assert_classified(ran, F.DISCONNECTED, step, within=2.0)
    assert failure.retryable


async def test_close_after_auth_reply(hostile: HostileFactory) -> None:
    server = await hostile(Hostile(replies={"AUTH": [(Send(line("235 2.7.0 ok")), Close())]}))
    ran = await run(smtp_settings(server.port))
    assert_classified(ran, F.DISCONNECTED, Step.MAIL, within=2.0)


# --- terminal escapes and markup ----------------------------------------------------------

ESCAPES = (
    "\x1b[2J\x1b[31mred\x1b[0m \x1b]52;c;aGFja2Vk\x07 \x1b]0;title\x07 bell\x07 [bold red]x[/]"
)


async def test_escape_sequences_are_carried_as_data(hostile: HostileFactory) -> None:
    server = await hostile(
        Hostile(
            greeting=line(f"220 hostile {ESCAPES}"),
            replies={"MAIL": [line(f"550 5.7.1 {ESCAPES}")]},
        )
    )
    ran = await run(smtp_settings(server.port))
    failure = assert_classified(ran, F.SENDER_REJECTED, Step.MAIL, within=2.0)
    incoming = [e.text for e in ran.events if e.direction is Direction.IN]
    assert any(ESCAPES in text for text in incoming)  # exactly as the server sent it
    assert ESCAPES in failure.reply_text
