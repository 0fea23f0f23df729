"""Every failure class that can be produced locally, end to end against real servers.

Each test asserts the class, the failing step and a hint text.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import trustme

from tests.smtpservers import (
    CLOSE,
    SILENT,
    Certs,
    ScriptedFactory,
    SmtpServerFactory,
    Tarpit,
)
from tests.smtpservers import Script as S
from tests.transports.helpers import PASSWORD, USER, Run, exchange, message
from transports.errors import FailureClass, SendFailure
from transports.events import Direction, Step
from transports.hints import with_hints
from transports.message import Attachment, build_message
from transports.settings import Settings
from transports.smtp import SmtpTransport


def failed(
    run: Run, settings: Settings, cls: FailureClass, step: Step, *hint_words: str
) -> SendFailure:
    """Assert the run failed with this class at this step, with hints naming the words."""
    assert run.failure is not None, run.transcript()
    assert run.failure.failure_class is cls, (run.failure, run.transcript())
    assert run.failure.step is step, (run.failure, run.transcript())
    failure = with_hints(run.failure, settings)
    hints = "\n".join(failure.hints)
    for word in hint_words:
        assert word.lower() in hints.lower(), (word, hints)
    assert "Thunderbird" in failure.hints[-1]
    return failure


# --- network and DNS --------------------------------------------------------------------


async def test_dns_failure_names_the_spelling() -> None:
    settings = Settings.model_validate(
        {"timeout": 2, "smtp": {"host": "nothing.invalid", "username": USER}}
    )
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.DNS, Step.RESOLVE, "spelling")
    assert "resolved" in failure.title


async def test_refused_port_suggests_port_and_firewall(
    smtp_server: SmtpServerFactory, closed_port: int
) -> None:
    settings = Settings.model_validate(
        {"timeout": 2, "smtp": {"host": "127.0.0.1", "port": closed_port, "username": USER}}
    )
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.REFUSED, Step.CONNECT, "firewall", "port 25")
    assert failure.retryable


async def test_tarpit_is_a_greeting_timeout_after_the_step_timeout(tarpit: Tarpit) -> None:
    settings = Settings.model_validate(
        {"timeout": 1, "smtp": {"host": "127.0.0.1", "port": tarpit.port, "username": USER}}
    )
    start = time.perf_counter()
    run = await exchange(settings)
    took = time.perf_counter() - start
    failed(run, settings, FailureClass.GREETING_TIMEOUT, Step.GREETING, "465 expects TLS")
    assert 0.9 < took < 2.5
    assert any("connected to 127.0.0.1" in text for text in run.texts())


async def test_dripping_server_still_times_out_per_step(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(S(drip={"EHLO": 0.2}))
    settings = server.settings(timeout=1)
    start = time.perf_counter()
    run = await exchange(settings)
    assert time.perf_counter() - start < 2.5
    failure = failed(run, settings, FailureClass.TIMEOUT, Step.EHLO, "raise the timeout")
    assert failure.retryable


# --- TLS mismatches ---------------------------------------------------------------------


async def test_implicit_tls_client_on_a_starttls_port(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, security="tls", ca_file=certs.ca_pem)
    run = await exchange(settings)
    failed(run, settings, FailureClass.TLS_WRONG_VERSION, Step.TLS, "587", "465")


async def test_starttls_client_on_an_implicit_tls_port(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("tls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, security="starttls", ca_file=certs.ca_pem, timeout=1)
    run = await exchange(settings)
    failed(run, settings, FailureClass.GREETING_TIMEOUT, Step.GREETING, "465 expects TLS")


# --- certificates -----------------------------------------------------------------------


async def test_self_signed_starttls(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", cert=certs.self_signed, accounts={USER: PASSWORD})
    settings = server.settings(username=USER)
    run = await exchange(settings)
    failure = failed(
        run,
        settings,
        FailureClass.CERT_SELF_SIGNED,
        Step.TLS,
        "Trusted certificate file",
        "never use it for Gmail",
    )
    assert "self-signed" in failure.title
    assert "verify code 18" in failure.detail
    assert server.handler.attempted_auth == []


async def test_self_signed_implicit_tls(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("tls", cert=certs.self_signed, accounts={USER: PASSWORD})
    settings = server.settings(username=USER)
    run = await exchange(settings)
    failed(run, settings, FailureClass.CERT_SELF_SIGNED, Step.TLS, "Trusted certificate file")


async def test_untrusted_ca(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", cert=certs.untrusted, accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.CERT_UNTRUSTED, Step.TLS, "CA")
    assert "verify code 20" in failure.detail


async def test_the_ca_file_replaces_the_system_cas(
    smtp_server: SmtpServerFactory, certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a trusted certificate file, only that file is trusted (as curl's --cacert)."""
    server = await smtp_server("starttls", cert=certs.good, accounts={USER: PASSWORD})
    # The test CA stands in for the system store (OpenSSL reads SSL_CERT_FILE).
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_pem))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    system = await exchange(server.settings(username=USER))
    assert system.failure is None, system.transcript()
    assert "verified (system CA store, host name checked)" in system.transcript()

    logins = len(server.handler.attempted_auth)
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    settings = server.settings(username=USER, ca_file=other_ca)
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.CERT_UNTRUSTED, Step.TLS, str(other_ca))
    assert "only trust" in failure.hints[0], failure.hints
    assert len(server.handler.attempted_auth) == logins

    pinned = await exchange(server.settings(username=USER, ca_file=certs.ca_pem))
    assert pinned.failure is None, pinned.transcript()
    assert f"verified (trusting only {certs.ca_pem})" in pinned.transcript()


async def test_hostname_mismatch(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("tls", cert=certs.wrong_host, accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.CERT_HOSTNAME, Step.TLS, "host name")
    assert "127.0.0.1" in failure.detail


async def test_expired_certificate(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", cert=certs.expired, accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.CERT_EXPIRED, Step.TLS, "expired", "clock")
    assert "verify code 10" in failure.detail


async def test_missing_ca_file_names_the_path(
    smtp_server: SmtpServerFactory, tmp_path: Path
) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    missing = tmp_path / "no-such-ca.pem"
    settings = server.settings(username=USER, ca_file=missing)
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.CA_FILE, Step.TLS, "PEM")
    assert str(missing) in failure.title
    assert run.events == []  # stopped before connecting


async def test_ca_file_that_is_not_pem(smtp_server: SmtpServerFactory, tmp_path: Path) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    settings = server.settings(username=USER, ca_file=bogus)
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.CA_FILE, Step.TLS, "BEGIN CERTIFICATE")
    assert str(bogus) in failure.detail


# --- STARTTLS ---------------------------------------------------------------------------


async def test_starttls_not_offered_never_sends_the_password(
    smtp_server: SmtpServerFactory,
) -> None:
    # A plain server that would happily take AUTH in clear text.
    server = await smtp_server("plain", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, security="starttls")
    run = await exchange(settings)
    failure = failed(
        run,
        settings,
        FailureClass.STARTTLS_NOT_OFFERED,
        Step.STARTTLS,
        "refuses to send the password in clear text",
    )
    assert not failure.retryable
    assert server.handler.attempted_auth == []
    assert server.handler.commands == []
    assert not any(e.text.startswith("AUTH") for e in run.events)


async def test_starttls_refused_454(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        S(
            ehlo="250-scripted\n250-STARTTLS\n250 AUTH PLAIN",
            replies={"STARTTLS": "454 4.7.0 TLS not available due to local problem"},
        )
    )
    settings = server.settings(security="starttls")
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.STARTTLS_REFUSED, Step.STARTTLS, "454")
    assert failure.reply_code == 454
    assert failure.retryable
    assert "AUTH" not in server.verbs()


async def test_server_that_requires_starttls_with_security_none(
    smtp_server: SmtpServerFactory,
) -> None:
    server = await smtp_server("starttls")
    settings = server.settings(security="none", from_address=USER)
    run = await exchange(settings, None, [message(settings)])
    failed(run, settings, FailureClass.ENCRYPTION_REQUIRED, Step.MAIL, "starttls")


# --- authentication -------------------------------------------------------------------


async def test_wrong_password_535(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", accounts={USER: "the-right-one"})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings)
    failure = failed(
        run, settings, FailureClass.AUTH_FAILED, Step.AUTH, "username or password", "app password"
    )
    assert failure.reply_code == 535
    assert not failure.retryable


async def test_password_missing_before_connecting(smtp_server: SmtpServerFactory) -> None:
    server = await smtp_server("starttls")
    settings = server.settings(username=USER)
    run = await exchange(settings, secret="")
    failed(run, settings, FailureClass.PASSWORD_MISSING, Step.AUTH, "smtpdesk password set")
    assert run.events == []


async def test_auth_not_offered(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", auth=False)
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings)
    failed(run, settings, FailureClass.AUTH_NOT_OFFERED, Step.AUTH, "leave the username empty")


async def test_auth_required_530(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        S(replies={"MAIL": "530 5.7.0 Authentication required"}, ehlo="250 scripted")
    )
    settings = server.settings(username="")
    run = await exchange(settings, None, [message(settings)])
    failed(run, settings, FailureClass.AUTH_REQUIRED, Step.MAIL, "username and password")


# --- envelope and size ------------------------------------------------------------------


async def test_sender_rejected_550(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        S(
            replies={
                "MAIL": "550 5.1.8 <me@example.test>: Sender address rejected: Domain not found"
            }
        )
    )
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings)])
    failure = failed(run, settings, FailureClass.SENDER_REJECTED, Step.MAIL, "From address")
    assert failure.reply_code == 550
    assert "RSET" in server.verbs()  # the session was reset for the next message


async def test_sender_not_owned_553(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        S(
            replies={
                "MAIL": "553 5.7.1 <boss@example.test>: Sender address rejected: "
                "not owned by user me@example.test"
            }
        )
    )
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings)])
    failed(run, settings, FailureClass.SEND_AS_DENIED, Step.MAIL, "Send As")


async def test_recipient_rejected_550(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server(
        "starttls",
        accounts={USER: PASSWORD},
        refuse_recipients={"nobody@example.test": "550 5.1.1 <nobody@example.test>: no such user"},
    )
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    run = await exchange(settings, PASSWORD, [message(settings, to="nobody@example.test")])
    failure = failed(run, settings, FailureClass.RECIPIENT_REJECTED, Step.RCPT, "typos")
    assert "no such user" in failure.detail
    assert "DATA" not in server.handler.commands


async def test_size_precheck_stops_before_mail(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD}, data_size_limit=4000)
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    big = message(settings, attachments=[Attachment("scan.pdf", b"%PDF-1.4\n" + b"x" * 6000)])
    small = message(settings)
    run = await exchange(settings, PASSWORD, [big])
    failure = failed(run, settings, FailureClass.MESSAGE_TOO_BIG, Step.MAIL, "SIZE")
    size = len(big.as_bytes())
    assert f"{size} bytes" in failure.detail and "4000 bytes" in failure.detail
    assert server.handler.commands == [f"AUTH PLAIN {USER}"]  # no MAIL, no DATA
    # The session stays usable: the small message still goes out on it.
    transport_events: list[object] = []
    transport = SmtpTransport(settings, PASSWORD, transport_events.append)
    async with transport:
        try:
            await transport.send(big)
        except SendFailure as exc:
            assert exc.failure_class is FailureClass.MESSAGE_TOO_BIG
        result = await transport.send(small)
    assert result.queue_id
    assert len(server.handler.messages) == 1


async def test_message_too_big_552_at_data(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(S(replies={".": "552 5.3.4 Message size exceeds fixed limit"}))
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings)])
    failed(run, settings, FailureClass.MESSAGE_TOO_BIG, Step.DATA, "EHLO")


# --- temporary failures and disconnects -------------------------------------------------


async def test_421_greeting_is_temporary(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(S(greeting="421 4.3.2 Service not available, try later"))
    settings = server.settings()
    run = await exchange(settings)
    failure = failed(run, settings, FailureClass.TEMPORARY, Step.GREETING, "try again")
    assert failure.retryable and failure.reply_code == 421


async def test_421_at_rcpt_is_temporary(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        S(replies={"RCPT": "421 4.7.0 Too many connections, closing", ".": CLOSE})
    )
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings)])
    failure = failed(run, settings, FailureClass.TEMPORARY, Step.RCPT, "few minutes")
    assert failure.retryable


async def test_421_after_an_accepted_recipient_sends_no_data(
    scripted_server: ScriptedFactory,
) -> None:
    """A 421 on a later RCPT ends the message as temporary: no DATA on a closing session."""
    server = await scripted_server(
        S(replies={"RCPT": ["250 2.1.5 OK", "421 4.3.2 System shutting down"]})
    )
    settings = server.settings()
    outgoing = build_message(
        settings, to=["a@example.test", "b@example.test"], subject="Invoice", body="Hello"
    )
    run = await exchange(settings, PASSWORD, [outgoing])
    failure = failed(run, settings, FailureClass.TEMPORARY, Step.RCPT, "few minutes")
    assert failure.retryable and failure.reply_code == 421
    assert "DATA" not in server.verbs()


async def test_disconnect_in_the_middle_of_data(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(S(close_in_data=True))
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings)])
    failure = failed(run, settings, FailureClass.DISCONNECTED, Step.DATA, "closed the connection")
    assert failure.retryable


async def test_server_goes_silent_at_data(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(S(replies={".": SILENT}))
    settings = server.settings(timeout=1)
    run = await exchange(settings, PASSWORD, [message(settings)])
    failed(run, settings, FailureClass.TIMEOUT, Step.DATA, "timeout")


async def test_garbage_instead_of_smtp(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(S(greeting="HTTP/1.1 400 Bad Request"))
    settings = server.settings()
    run = await exchange(settings)
    failed(run, settings, FailureClass.PROTOCOL, Step.GREETING, "mail server")


# --- cancellation -----------------------------------------------------------------------


async def test_cancel_mid_greeting_closes_the_socket_at_once(tarpit: Tarpit) -> None:
    settings = Settings.model_validate(
        {"timeout": 30, "smtp": {"host": "127.0.0.1", "port": tarpit.port, "username": USER}}
    )
    events: list[object] = []
    transport = SmtpTransport(settings, PASSWORD, events.append)
    task = asyncio.create_task(transport.open())
    await asyncio.wait_for(tarpit.accepted.wait(), 2)
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert task.cancelled()
    assert time.perf_counter() - start < 0.2
    await asyncio.wait_for(tarpit.closed_by_client.wait(), 1)


async def test_events_mark_the_error_direction_only_in_run_test() -> None:
    """The transport itself emits no ERROR events; run_test adds the one line."""
    settings = Settings.model_validate(
        {"timeout": 2, "smtp": {"host": "nothing.invalid", "username": USER}}
    )
    run = await exchange(settings)
    assert all(event.direction is not Direction.ERROR for event in run.events)
