"""HttpTransport against the sandbox relay and scripted HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.http.servers import Answer, ScriptedHttpServer
from transports.base import SendResult
from transports.errors import FailureClass, SendFailure
from transports.events import Direction, Step, TranscriptEvent
from transports.http_relay import BODY_LIMIT, HttpTransport
from transports.message import Attachment, Outgoing, build_message
from transports.settings import Settings
from tui.sandbox import Fault, Faults, Sandbox, make_certificate

KEY = "relay-Key-Recognisable-7f3a9c"


def relay_settings(url: str, *, timeout: float = 2, **extra: Any) -> Settings:
    """HTTP settings for a relay URL."""
    return Settings.model_validate(
        {
            "protocol": "http",
            "preset": "custom",
            "reply_to": "billing@example.test",
            "timeout": timeout,
            "http": {"url": url},
            **extra,
        }
    )


def message_for(settings: Settings, **kwargs: Any) -> Outgoing:
    defaults: dict[str, Any] = {
        "to": ["customer@example.test"],
        "subject": "Invoice 42",
        "body": "Please find the invoice attached.",
    }
    return build_message(settings, **{**defaults, **kwargs})


class Run:
    """One transport run: its events and its result or failure."""

    def __init__(self) -> None:
        self.events: list[TranscriptEvent] = []
        self.result: SendResult | None = None
        self.failure: SendFailure | None = None
        self.transport: HttpTransport | None = None

    def texts(self, direction: Direction | None = None) -> list[str]:
        return [e.text for e in self.events if direction is None or e.direction is direction]


async def run(settings: Settings, key: str | None, outgoing: Outgoing | None = None) -> Run:
    """Open, send one message, close; keep the events and the outcome."""
    outcome = Run()
    transport = HttpTransport(settings, key, outcome.events.append)
    outcome.transport = transport
    try:
        async with transport:
            outcome.result = await transport.send(outgoing or message_for(settings))
    except SendFailure as failure:
        outcome.failure = failure
    return outcome


def headers_of(data: bytes) -> Message:
    return message_from_bytes(data)


async def test_success_delivers_with_queue_id_and_blind_copy_only_in_envelope(
    sandbox: Sandbox,
) -> None:
    """A 200 with {"id"} is success; the message arrives whole; the copy is envelope-only."""
    base = sandbox.settings("http")
    settings = Settings.model_validate(
        {**base.model_dump(mode="json"), "copy_to": "archive@example.test"}
    )
    outgoing = message_for(
        settings,
        cc=["accounts@example.test"],
        attachments=[Attachment("invoice.pdf", b"%PDF-1.7\n\x00\x01binary")],
    )
    outcome = await run(settings, sandbox.http_key, outgoing)

    assert outcome.failure is None
    assert outcome.result is not None
    [captured] = sandbox.messages
    assert outcome.result.queue_id == captured.queue_id
    assert outcome.result.reply == f"200 OK (id {captured.queue_id})"
    assert outcome.result.accepted == outgoing.recipients
    assert captured.via == "http"
    assert captured.data == outgoing.as_bytes()
    assert captured.path.read_bytes() == outgoing.as_bytes()
    assert captured.sender == "demo@smtpdesk.test"
    assert captured.recipients == (
        "customer@example.test",
        "accounts@example.test",
        "archive@example.test",
    )
    received = headers_of(captured.data)
    assert received["Reply-To"] == "demo@smtpdesk.test"
    assert "archive@example.test" not in captured.data.decode("ascii", "replace")
    assert received.get("Bcc") is None
    [part] = [p for p in received.walk() if p.get_filename() == "invoice.pdf"]
    assert part.get_content_type() == "application/pdf"
    assert part.get_payload(decode=True) == b"%PDF-1.7\n\x00\x01binary"


async def test_transcript_has_request_status_headers_and_body(sandbox: Sandbox) -> None:
    """Request line (out), trace events, status line (in), headers and a body excerpt."""
    outcome = await run(sandbox.settings("http"), sandbox.http_key)
    assert outcome.result is not None
    out = outcome.texts(Direction.OUT)
    assert out[0] == f"POST /send HTTP/1.1 (Host: 127.0.0.1:{sandbox.http_port})"
    assert "Authorization: Bearer <redacted>" in out
    info = outcome.texts(Direction.INFO)
    assert f"connecting to 127.0.0.1 port {sandbox.http_port}" in info
    assert "request headers sent" in info
    assert "response headers received" in info
    incoming = outcome.texts(Direction.IN)
    assert incoming[0] == "HTTP/1.1 200 OK"
    assert "content-type: application/json" in incoming
    assert incoming[-1].startswith('body: {"id": "')
    steps = [e.step for e in outcome.events]
    assert steps.index(Step.REQUEST) < steps.index(Step.RESPONSE)
    elapsed = [e.elapsed_ms for e in outcome.events]
    assert elapsed == sorted(elapsed)


async def test_the_relay_receives_the_section_5b_request() -> None:
    """POST, JSON content type, Bearer key, envelope and base64 message as specified."""
    async with ScriptedHttpServer(Answer(200, {"Content-Type": "application/json"})) as server:
        settings = relay_settings(server.url, copy_to="archive@example.test")
        outgoing = message_for(settings)
        outcome = await run(settings, KEY, outgoing)
    assert outcome.result is not None
    assert outcome.result.queue_id == ""
    [request] = server.requests
    assert request.request_line == "POST /send HTTP/1.1"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    document = json.loads(request.body)
    assert document["envelope"] == {
        "from": "billing@example.test",
        "to": ["customer@example.test", "archive@example.test"],
    }
    assert base64.b64decode(document["message"]) == outgoing.as_bytes()


async def test_no_key_sends_no_authorization_header() -> None:
    async with ScriptedHttpServer(Answer(202, body=b'{"id": 42}')) as server:
        outcome = await run(relay_settings(server.url), None)
    assert outcome.result is not None
    assert outcome.result.queue_id == "42"
    assert "authorization" not in server.requests[0].headers
    assert "no Authorization (no key set)" in outcome.texts(Direction.OUT)


async def test_non_json_2xx_body_is_success_without_queue_id() -> None:
    async with ScriptedHttpServer(Answer(204)) as server:
        outcome = await run(relay_settings(server.url), KEY)
    assert outcome.result is not None
    assert (outcome.result.queue_id, outcome.result.reply) == ("", "204 Scripted")
    async with ScriptedHttpServer(Answer(200, body=b"queued, thanks")) as server:
        outcome = await run(relay_settings(server.url), KEY)
    assert outcome.result is not None
    assert outcome.result.queue_id == ""
    assert "body: queued, thanks" in outcome.texts(Direction.IN)


@pytest.mark.parametrize("key", ["wrong-key", None])
async def test_wrong_or_missing_key_is_401(sandbox: Sandbox, key: str | None) -> None:
    """The sandbox checks the Bearer key: 401 is HTTP_UNAUTHORIZED, nothing captured."""
    outcome = await run(sandbox.settings("http"), key)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.HTTP_UNAUTHORIZED
    assert (failure.step, failure.reply_code, failure.retryable) == (Step.RESPONSE, 401, False)
    assert failure.detail == "missing or wrong API key"
    assert 'www-authenticate: Bearer realm="sandbox"' in outcome.texts(Direction.IN)
    assert sandbox.messages == []


async def test_403_is_unauthorized_too() -> None:
    async with ScriptedHttpServer(Answer(403, body=b'{"message": "key lacks send"}')) as server:
        outcome = await run(relay_settings(server.url), KEY)
    assert outcome.failure is not None
    assert outcome.failure.failure_class is FailureClass.HTTP_UNAUTHORIZED
    assert outcome.failure.detail == "key lacks send"


async def test_wrong_path_is_404(sandbox: Sandbox) -> None:
    settings = relay_settings(f"http://127.0.0.1:{sandbox.http_port}/v1/nope")
    outcome = await run(settings, sandbox.http_key)
    assert outcome.failure is not None
    assert outcome.failure.failure_class is FailureClass.HTTP_NOT_FOUND
    assert outcome.failure.reply_code == 404
    assert "/v1/nope" in outcome.failure.detail


async def test_message_over_the_relay_limit_is_413(tmp_path: Path) -> None:
    async with Sandbox(tmp_path, max_message_size=4096) as sandbox:
        settings = sandbox.settings("http")
        outgoing = message_for(settings, attachments=[Attachment("big.bin", bytes(64 * 1024))])
        outcome = await run(settings, sandbox.http_key, outgoing)
        assert sandbox.messages == []
    assert outcome.failure is not None
    assert outcome.failure.failure_class is FailureClass.HTTP_TOO_LARGE
    assert (outcome.failure.reply_code, outcome.failure.retryable) == (413, False)
    assert "exceeds the limit" in outcome.failure.detail


async def test_429_is_rate_limited_retryable_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(Fault("http", "429 slow down", times=1))
    settings = sandbox.settings("http")
    outcome = await run(settings, sandbox.http_key)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.HTTP_RATE_LIMITED
    assert (failure.reply_code, failure.retryable) == (429, True)
    assert failure.detail == "slow down (Retry-After: 1 s)"
    assert outcome.transport is not None
    assert outcome.transport.retry_after == 1
    assert "retry-after: 1" in outcome.texts(Direction.IN)
    # The fault was for one attempt only: the retry goes through.
    again = await run(settings, sandbox.http_key)
    assert again.result is not None
    assert len(sandbox.messages) == 1


async def test_retry_after_as_http_date() -> None:
    answer = Answer(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    async with ScriptedHttpServer(answer) as server:
        outcome = await run(relay_settings(server.url), KEY)
    assert outcome.transport is not None
    assert outcome.transport.retry_after == 0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_server_error_and_retryable(sandbox: Sandbox, status: int) -> None:
    sandbox.faults = Faults(Fault("http", f"{status} relay trouble"))
    outcome = await run(sandbox.settings("http"), sandbox.http_key)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.HTTP_SERVER_ERROR
    assert (failure.reply_code, failure.retryable, failure.step) == (status, True, Step.RESPONSE)
    assert failure.detail == "relay trouble"


async def test_other_4xx_is_client_error() -> None:
    body = b'{"error": {"message": "envelope.to[0]: domain not allowed"}}'
    async with ScriptedHttpServer(Answer(422, body=body)) as server:
        outcome = await run(relay_settings(server.url), KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.HTTP_CLIENT_ERROR
    assert (failure.reply_code, failure.retryable) == (422, False)
    assert failure.detail == "envelope.to[0]: domain not allowed"


async def test_refused_at_open(tmp_path: Path) -> None:
    """A stopped sandbox: the connection check in open() is refused; nothing is POSTed."""
    sandbox = Sandbox(tmp_path)
    await sandbox.start()
    settings = sandbox.settings("http")
    await sandbox.stop()
    outcome = await run(settings, KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.REFUSED
    assert failure.step is Step.CONNECT
    assert not any(e.step is Step.REQUEST for e in outcome.events)


async def test_refused_at_send_after_the_relay_went_away() -> None:
    """Open succeeded, then the relay stopped: the POST itself is refused."""
    events: list[TranscriptEvent] = []
    async with ScriptedHttpServer() as server:
        settings = relay_settings(server.url)
        transport = HttpTransport(settings, KEY, events.append)
        await transport.open()
    with pytest.raises(SendFailure) as caught:
        await transport.send(message_for(settings))
    await transport.close()
    assert caught.value.failure_class is FailureClass.REFUSED
    assert caught.value.__context__ is None


async def test_dns_failure() -> None:
    outcome = await run(relay_settings("https://relay.invalid/send"), KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.DNS
    assert failure.step is Step.RESOLVE


async def test_relay_that_never_answers_times_out() -> None:
    async with ScriptedHttpServer(Answer(hang=True)) as server:
        outcome = await run(relay_settings(server.url, timeout=1), KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.TIMEOUT
    assert failure.retryable is True
    assert "1 s" in failure.title


async def test_redirect_is_not_followed_and_the_key_stays_home() -> None:
    """A 307 to another address is HTTP_REDIRECT; the other server sees nothing."""
    async with ScriptedHttpServer() as elsewhere:
        answer = Answer(307, {"Location": f"http://localhost:{elsewhere.port}/send"})
        async with ScriptedHttpServer(answer) as relay:
            outcome = await run(relay_settings(relay.url), KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.HTTP_REDIRECT
    assert failure.reply_code == 307
    assert f"localhost:{elsewhere.port}" in failure.detail
    assert len(relay.requests) == 1
    assert elsewhere.connections == 0
    assert elsewhere.requests == []


async def test_huge_response_body_is_read_only_up_to_the_limit() -> None:
    """A relay that sends megabytes: at most BODY_LIMIT is read, the excerpt is short."""
    answer = Answer(200, body=b'{"id": "x"}', stream_bytes=8 * 1024 * 1024)
    async with ScriptedHttpServer(answer) as server:
        outcome = await asyncio.wait_for(run(relay_settings(server.url), KEY), timeout=10)
    assert outcome.result is not None
    assert outcome.result.queue_id == ""  # the cut body is not valid JSON
    assert f"body longer than {BODY_LIMIT} bytes: cut" in outcome.texts(Direction.INFO)
    [excerpt] = [t for t in outcome.texts(Direction.IN) if t.startswith("body: ")]
    assert len(excerpt) < 400


async def test_https_with_a_self_signed_certificate_is_refused_at_open(tmp_path: Path) -> None:
    """Verification is always on: a self-signed relay fails in the connection check."""
    cert, key = make_certificate()
    context = _server_context(tmp_path, cert, key)
    async with ScriptedHttpServer(tls=context) as server:
        outcome = await run(relay_settings(server.url), KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.CERT_SELF_SIGNED
    assert failure.step is Step.TLS
    assert server.requests == []


async def test_https_success_reports_tls_details(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusting the certificate (SSL_CERT_FILE), the transcript shows TLS details."""
    cert, key = make_certificate()
    (tmp_path / "trust.pem").write_bytes(cert)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "trust.pem"))
    context = _server_context(tmp_path, cert, key)
    async with ScriptedHttpServer(Answer(200, body=b'{"id": "T1"}'), tls=context) as server:
        outcome = await run(relay_settings(server.url), KEY)
    assert outcome.result is not None
    assert outcome.result.queue_id == "T1"
    tls_lines = [e.text for e in outcome.events if e.step is Step.TLS]
    assert any(line.startswith("TLS TLSv1.3, cipher ") for line in tls_lines)
    assert any("certificate subject: commonName=127.0.0.1" in line for line in tls_lines)
    assert any(line.endswith("; verified") for line in tls_lines)
    assert [e.encrypted for e in outcome.events if e.direction is Direction.IN][0] is True


def _server_context(folder: Path, cert: bytes, key: bytes) -> ssl.SSLContext:
    (folder / "server.pem").write_bytes(cert + key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem")
    return context


async def test_cancellation_ends_at_once(sandbox: Sandbox) -> None:
    """Cancelling a send against a relay that hangs returns at once; abort() closes."""
    async with ScriptedHttpServer(Answer(hang=True)) as server:
        settings = relay_settings(server.url, timeout=30)
        transport = HttpTransport(settings, KEY, lambda event: None)
        await transport.open()
        task = asyncio.create_task(transport.send(message_for(settings)))
        while not server.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=1)
        transport.abort()
        await asyncio.sleep(0)
    assert "secret=set" in repr(transport)


async def test_the_key_never_leaks(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Success and every failure path: no key in events, failures, logs or output."""
    caplog.set_level(logging.DEBUG)
    runs: list[Run] = []
    base = sandbox.settings("http")
    runs.append(await run(base, KEY))  # 401 from the sandbox
    sandbox.http_key = KEY
    runs.append(await run(base, KEY))  # success
    sandbox.faults = Faults(Fault("http", "429 later"))
    runs.append(await run(base, KEY))
    sandbox.faults = None
    async with ScriptedHttpServer(Answer(500, echo_authorization=True)) as echo:
        runs.append(await run(relay_settings(echo.url), KEY))
    async with ScriptedHttpServer(Answer(200, echo_authorization=True)) as echo:
        runs.append(await run(relay_settings(echo.url), KEY))
    async with ScriptedHttpServer(Answer(302, {"Location": f"https://x.test/{KEY}"})) as moved:
        runs.append(await run(relay_settings(moved.url), KEY))
    async with ScriptedHttpServer(Answer(hang=True)) as hang:
        runs.append(await run(relay_settings(hang.url, timeout=1), KEY))
    runs.append(await run(relay_settings(f"http://127.0.0.1:{sandbox.http_port}/x"), KEY))
    await sandbox.stop()
    runs.append(await run(base, KEY))  # refused

    assert [r.failure is None for r in runs].count(True) == 2
    forms = [KEY, base64.b64encode(KEY.encode()).decode()]
    texts: list[str] = []
    for outcome in runs:
        texts += [e.text for e in outcome.events]
        texts += [json.dumps(e.to_dict()) for e in outcome.events]
        texts.append(repr(outcome.transport))
        if outcome.failure is not None:
            texts += [str(outcome.failure), repr(outcome.failure)]
            texts.append(json.dumps(outcome.failure.to_dict()))
            assert outcome.failure.__context__ is None
            assert outcome.failure.__cause__ is None
        if outcome.result is not None:
            texts.append(json.dumps(outcome.result.to_dict()))
    texts += [record.getMessage() for record in caplog.records]
    out, err = capfd.readouterr()
    texts += [out, err]
    assert any("<redacted>" in t and "body:" in t for t in texts)  # the echo was redacted
    for text in texts:
        for form in forms:
            assert form not in text


async def test_probe_checks_the_connection_without_posting(sandbox: Sandbox) -> None:
    """open() alone (the probe) resolves and connects but sends no request and no key."""
    from transports.testsend import run_test

    events: list[TranscriptEvent] = []
    outcome = await run_test(sandbox.settings("http"), KEY, on_event=events.append, probe=True)
    assert outcome.ok
    assert sandbox.http_requests == 0
    assert sandbox.messages == []
    texts = [e.text for e in events]
    assert f"connected to 127.0.0.1 port {sandbox.http_port}" in " ".join(texts)
    assert not any(e.direction is Direction.OUT for e in events)
