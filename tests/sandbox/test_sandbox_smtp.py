"""The sandbox's SMTP listeners: STARTTLS + AUTH, implicit TLS, capture, faults, logs."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from email import message_from_bytes
from pathlib import Path

import aiosmtplib
import pytest

from tui.sandbox import (
    SMTP_LOGGER,
    CapturedMessage,
    Fault,
    Faults,
    Sandbox,
    Stage,
    describe_message,
    describe_sandbox,
    serve_forever,
)

MESSAGE = (
    b"From: demo@smtpdesk.test\r\nTo: someone@example.test\r\nSubject: hello\r\n"
    b"\r\nA body line.\r\n"
)


def _context(sandbox: Sandbox) -> ssl.SSLContext:
    """A verifying client context that trusts only the sandbox certificate."""
    return ssl.create_default_context(cafile=str(sandbox.ca_file))


def _client(
    sandbox: Sandbox, *, implicit: bool = False, context: ssl.SSLContext | None = None
) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=sandbox.tls_port if implicit else sandbox.submission_port,
        use_tls=implicit,
        start_tls=False,
        tls_context=context or _context(sandbox),
        local_hostname="client.test",
        timeout=2,
    )


async def _starttls_login(sandbox: Sandbox) -> aiosmtplib.SMTP:
    client = _client(sandbox)
    await client.connect()
    await client.ehlo()
    await client.starttls()
    await client.ehlo()
    await client.login(sandbox.username, sandbox.password)
    return client


async def test_starttls_auth_send_is_captured_to_an_eml_file(sandbox: Sandbox) -> None:
    """STARTTLS, AUTH, a message: the reply carries the queue id of the .eml file."""
    client = await _starttls_login(sandbox)
    refused, reply = await client.sendmail(
        "demo@smtpdesk.test", ["someone@example.test", "copy@example.test"], MESSAGE
    )
    await client.quit()

    assert refused == {}
    [captured] = sandbox.messages
    assert reply == f"2.0.0 OK: queued as {captured.queue_id}"
    assert captured.via == "starttls"
    assert captured.account == "demo@smtpdesk.test"
    assert captured.sender == "demo@smtpdesk.test"
    assert captured.recipients == ("someone@example.test", "copy@example.test")
    assert captured.data == MESSAGE
    assert captured.path.name == f"0001-{captured.queue_id}.eml"
    assert captured.path.parent == sandbox.folder
    assert captured.path.read_bytes() == MESSAGE
    assert message_from_bytes(captured.path.read_bytes())["Subject"] == "hello"


async def test_tls_details_show_the_sandbox_certificate(sandbox: Sandbox) -> None:
    """After STARTTLS the verified peer certificate is the sandbox's, for 127.0.0.1."""
    client = await _starttls_login(sandbox)
    ssl_object = client.get_transport_info("ssl_object")
    cert = ssl_object.getpeercert()
    await client.quit()
    assert ("commonName", "127.0.0.1") in [item for rdn in cert["subject"] for item in rdn]
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    assert ("DNS", "localhost") in cert["subjectAltName"]


async def test_implicit_tls_offers_auth_at_once_and_captures(sandbox: Sandbox) -> None:
    """The implicit-TLS listener verifies, offers AUTH without STARTTLS and captures."""
    client = _client(sandbox, implicit=True)
    await client.connect()
    await client.ehlo()
    assert {"plain", "login"} <= set(client.server_auth_methods)
    assert not client.supports_extension("starttls")
    await client.login(sandbox.username, sandbox.password)
    await client.sendmail("demo@smtpdesk.test", ["x@example.test"], MESSAGE)
    await client.quit()
    assert [m.via for m in sandbox.messages] == ["tls"]


async def test_localhost_name_verifies_too(sandbox: Sandbox) -> None:
    """The certificate also names localhost (SAN), so a client may use that name."""
    client = aiosmtplib.SMTP(
        hostname="localhost",
        port=sandbox.tls_port,
        use_tls=True,
        tls_context=_context(sandbox),
        local_hostname="client.test",
        timeout=2,
    )
    await client.connect()
    await client.quit()


async def test_certificate_is_not_trusted_without_the_ca_file(sandbox: Sandbox) -> None:
    """Without ca_file the self-signed certificate fails verification (it is really checked)."""
    client = _client(sandbox, implicit=True, context=ssl.create_default_context())
    with pytest.raises(aiosmtplib.SMTPConnectError) as caught:
        await client.connect()
    cause = caught.value.__cause__
    assert isinstance(cause, ssl.SSLCertVerificationError)
    assert cause.verify_code == 18  # self-signed certificate


async def test_auth_is_not_offered_or_accepted_before_starttls(sandbox: Sandbox) -> None:
    """On the submission port AUTH is hidden and refused until STARTTLS."""
    client = _client(sandbox)
    await client.connect()
    await client.ehlo()
    assert client.supports_extension("starttls")
    assert not client.supports_extension("auth")
    secret = base64.b64encode(b"\0demo@smtpdesk.test\0demo").decode()
    reply = await client.execute_command(b"AUTH", b"PLAIN", secret.encode())
    assert reply.code == 530
    reply = await client.execute_command(b"MAIL", b"FROM:<demo@smtpdesk.test>")
    assert reply.code == 530
    await client.quit()
    assert sandbox.messages == []


async def test_mail_without_auth_is_refused_with_530(sandbox: Sandbox) -> None:
    """Encrypted but not logged in: MAIL FROM gets 530 5.7.0."""
    client = _client(sandbox, implicit=True)
    await client.connect()
    await client.ehlo()
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
        await client.sendmail("demo@smtpdesk.test", ["x@example.test"], MESSAGE)
    assert caught.value.code == 530
    await client.quit()


async def test_wrong_password_is_refused_with_535(sandbox: Sandbox) -> None:
    client = _client(sandbox, implicit=True)
    await client.connect()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as caught:
        await client.login(sandbox.username, "not-the-password")
    assert caught.value.code == 535
    await client.quit()


async def test_custom_accounts(tmp_path: Path) -> None:
    """Configured accounts replace the default one; each logs in with its own password."""
    accounts = {"ops@server.local": "s3cret-ops", "billing@example.test": "b1lling"}
    async with Sandbox(tmp_path, accounts=accounts) as sandbox:
        assert sandbox.username == "ops@server.local"
        assert sandbox.password == "s3cret-ops"
        client = _client(sandbox, implicit=True)
        await client.connect()
        await client.login("billing@example.test", "b1lling")
        await client.sendmail("billing@example.test", ["x@example.test"], MESSAGE)
        await client.quit()
        client = _client(sandbox, implicit=True)
        await client.connect()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await client.login("demo@smtpdesk.test", "sandbox-pass")
        await client.quit()
        assert [m.account for m in sandbox.messages] == ["billing@example.test"]


def test_empty_accounts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="accounts"):
        Sandbox(tmp_path, accounts={})


async def test_fault_fails_a_recipient_twice_then_accepts(sandbox: Sandbox) -> None:
    """Faults(...) answers 451 for one recipient twice, then lets it through."""
    sandbox.faults = Faults(
        Fault("rcpt", "451 4.3.0 try later", address="slow@example.test", times=2)
    )
    client = await _starttls_login(sandbox)
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
            await client.sendmail("demo@smtpdesk.test", ["slow@example.test"], MESSAGE)
        [refused] = caught.value.recipients
        assert (refused.code, refused.message) == (451, "4.3.0 try later")
        await client.rset()
    refused_map, _ = await client.sendmail(
        "demo@smtpdesk.test", ["slow@example.test", "ok@example.test"], MESSAGE
    )
    await client.quit()
    assert refused_map == {}
    assert [m.recipients for m in sandbox.messages] == [("slow@example.test", "ok@example.test")]


async def test_fault_hook_sees_stage_address_and_attempt(sandbox: Sandbox) -> None:
    """A plain callable works as the hook; attempts count per stage and address."""
    seen: list[tuple[str, str, int]] = []

    def hook(stage: str, address: str, attempt: int) -> str | None:
        seen.append((stage, address, attempt))
        if stage == "rcpt" and address == "gone@example.test":
            return "550 5.1.1 no such user"
        return None

    sandbox.faults = hook
    client = await _starttls_login(sandbox)
    refused, _ = await client.sendmail(
        "demo@smtpdesk.test", ["gone@example.test", "ok@example.test"], MESSAGE
    )
    await client.sendmail("demo@smtpdesk.test", ["ok@example.test"], MESSAGE)
    await client.quit()
    assert refused["gone@example.test"].code == 550
    assert seen == [
        ("mail", "demo@smtpdesk.test", 1),
        ("rcpt", "gone@example.test", 1),
        ("rcpt", "ok@example.test", 1),
        ("data", "demo@smtpdesk.test", 1),
        ("mail", "demo@smtpdesk.test", 2),
        ("rcpt", "ok@example.test", 2),
        ("data", "demo@smtpdesk.test", 2),
    ]
    assert [m.recipients for m in sandbox.messages] == [("ok@example.test",)] * 2


@pytest.mark.parametrize(
    ("stage", "reply", "error"),
    [
        ("mail", "550 5.7.1 Sender address rejected", aiosmtplib.SMTPSenderRefused),
        ("data", "554 5.2.252 SendAsDenied", aiosmtplib.SMTPDataError),
    ],
)
async def test_fault_at_mail_and_data(
    sandbox: Sandbox, stage: Stage, reply: str, error: type[aiosmtplib.SMTPResponseException]
) -> None:
    sandbox.faults = Faults(Fault(stage, reply))
    client = await _starttls_login(sandbox)
    with pytest.raises(error) as caught:
        await client.sendmail("demo@smtpdesk.test", ["x@example.test"], MESSAGE)
    await client.quit()
    assert f"{caught.value.code} {caught.value.message}" == reply
    assert sandbox.messages == []


async def test_on_message_is_called_for_each_capture(sandbox: Sandbox) -> None:
    received: list[CapturedMessage] = []
    sandbox.on_message = received.append
    client = await _starttls_login(sandbox)
    await client.sendmail("demo@smtpdesk.test", ["x@example.test"], MESSAGE)
    await client.sendmail("demo@smtpdesk.test", ["y@example.test"], MESSAGE)
    await client.quit()
    assert received == sandbox.messages
    assert [m.path.name[:5] for m in received] == ["0001-", "0002-"]
    assert "via starttls" in describe_message(received[0])


async def test_settings_point_at_the_running_sandbox(sandbox: Sandbox) -> None:
    starttls = sandbox.settings()
    assert (starttls.smtp.port, starttls.smtp.security.value) == (
        sandbox.submission_port,
        "starttls",
    )
    assert starttls.preset == "sandbox"
    assert starttls.smtp.username == starttls.sender == "demo@smtpdesk.test"
    assert starttls.smtp.ca_file == str(sandbox.ca_file)
    assert starttls.smtp.verify_tls is True
    tls = sandbox.settings("tls", timeout=2)
    assert (tls.smtp.port, tls.smtp.security.value, tls.timeout) == (sandbox.tls_port, "tls", 2)
    http = sandbox.settings("http")
    assert http.http.url == f"http://127.0.0.1:{sandbox.http_port}/send"
    assert http.reply_to == http.sender == "demo@smtpdesk.test"


def test_settings_need_a_started_sandbox(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="start"):
        Sandbox(tmp_path).settings()


async def test_stop_closes_open_connections(tmp_path: Path) -> None:
    """A client still connected when the sandbox stops sees the connection end."""
    sandbox = Sandbox(tmp_path)
    await sandbox.start()
    client = _client(sandbox)
    await client.connect()
    await sandbox.stop()
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.noop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", sandbox.submission_port)


async def test_logs_go_to_the_sandbox_logger_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """aiosmtpd's records arrive on smtpdesk.sandbox.smtp; no credential in any record."""
    password = "Recognisable-Pa55word"
    caplog.set_level(logging.DEBUG)
    async with Sandbox(tmp_path, accounts={"ops@server.local": password}) as sandbox:
        for method in ("plain", "login"):
            client = _client(sandbox)
            await client.connect()
            await client.starttls()
            await client.ehlo()
            if method == "plain":
                await client.auth_plain("ops@server.local", password)
            else:
                await client.auth_login("ops@server.local", password)
            await client.sendmail("ops@server.local", ["x@example.test"], MESSAGE)
            await client.quit()
    names = {record.name for record in caplog.records}
    assert SMTP_LOGGER in names
    assert "mail.log" not in names
    texts = [record.getMessage() for record in caplog.records]
    forbidden = [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0ops@server.local\0{password}".encode()).decode(),
    ]
    for text in texts:
        for secret in forbidden:
            assert secret not in text
    assert not any("login_data is deprecated" in text for text in texts)
    out, err = capfd.readouterr()
    assert out == err == ""


async def test_serve_forever_prints_where_it_listens_and_each_message(tmp_path: Path) -> None:
    """The foreground command prints its listeners, then one line per message."""
    lines: list[str] = []
    task = asyncio.create_task(
        serve_forever(tmp_path, submission_port=0, tls_port=0, http_port=0, print=lines.append)
    )
    for _ in range(200):
        if any("Ctrl+C" in line for line in lines):
            break
        await asyncio.sleep(0.01)
    port_line = next(line for line in lines if "implicit TLS" in line)
    port = int(port_line.split(":")[-1])
    assert any("STARTTLS" in line for line in lines)
    assert any("/send" in line for line in lines)
    ca_file = tmp_path / "sandbox-cert.pem"
    assert any(str(ca_file) in line for line in lines)
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        use_tls=True,
        tls_context=ssl.create_default_context(cafile=str(ca_file)),
        local_hostname="client.test",
        timeout=2,
    )
    await client.connect()
    await client.login("demo@smtpdesk.test", "sandbox-pass")
    await client.sendmail("demo@smtpdesk.test", ["x@example.test"], MESSAGE)
    await client.quit()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lines[-1].startswith("captured ")
    assert "demo@smtpdesk.test -> x@example.test" in lines[-1]


def test_describe_sandbox_shows_only_the_public_demo_secrets(tmp_path: Path) -> None:
    demo = Sandbox(tmp_path)
    assert "password 'sandbox-pass'; relay key 'demo-key'" in "\n".join(describe_sandbox(demo))
    private = Sandbox(tmp_path, accounts={"ops@server.local": "Pr1vate!"}, http_key="k-Secret")
    text = "\n".join(describe_sandbox(private))
    assert "Pr1vate!" not in text and "k-Secret" not in text
    assert "password (as configured); relay key (as configured)" in text


async def test_finished_sessions_are_not_kept(sandbox: Sandbox) -> None:
    """A long-running sandbox forgets closed SMTP sessions."""
    for _ in range(5):
        client = _client(sandbox)
        await client.connect()
        await client.quit()
        await asyncio.sleep(0.01)
    assert len(sandbox._protocols) <= 2
