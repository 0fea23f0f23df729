"""The HTTP relay transport (DESIGN.md section 5b) on httpx.

Each message is one ``POST <url>`` with a JSON body::

    {"envelope": {"from": "...", "to": ["...", ...]},
     "message": "<the complete RFC 5322 message, base64>"}

and ``Authorization: Bearer <key>`` when a key is set. The transcript comes
from httpx's ``trace`` request extension (TCP connect, TLS handshake, request
headers, response headers) plus our own lines: the request line, TLS details,
the status line, the response headers that matter and a bounded body excerpt.

``open()`` makes a connection check without sending anything: it resolves the
host, connects and, for ``https://``, completes a verified TLS handshake and
reports the certificate — so a probe finds DNS, port and certificate problems
without ever sending the key. HTTP has no session: ``send()`` makes its own
request (httpx may reuse the connection).

Rules: certificates are always verified (the settings have no HTTP "do not
verify" option); plain ``http://`` is allowed by the settings model only to
loopback; redirects are never followed, not even to the same host and port
(a 3xx is ``HTTP_REDIRECT`` naming the Location: the key goes only to the URL
the user entered, and a relay that moved is fixed in the settings); each step
(request, response) has the whole timeout as a deadline, whatever the pace of
the bytes; the body is read (and inflated) to ``BODY_LIMIT`` at most;
proxies and other settings from the environment are ignored. The key never
appears in an event, an exception or this object's repr.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import errno
import json
import logging
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from transports.base import SendResult, Transport
from transports.classify import _CERT_CODES, chain
from transports.errors import FailureClass, SendFailure
from transports.events import Clock, Direction, EventSink, Step, TranscriptEvent
from transports.message import Outgoing
from transports.settings import Settings

REDACTED = "<redacted>"
BODY_LIMIT = 64 * 1024
"""Never read more than this much of a response body."""
EXCERPT_CHARS = 300
"""At most this much of the body is shown in the transcript."""
RELEVANT_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "www-authenticate",
    "x-request-id",
    "request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "server",
)
"""Response headers shown in the transcript (others are left out)."""
USER_AGENT = "smtpdesk/0.1 (+https://github.com/smtpdesk)"
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
"""What a relay key may contain: visible ASCII (RFC 9110 field value, no spaces)."""

_STATUS_CLASSES: dict[int, tuple[FailureClass, str]] = {
    401: (FailureClass.HTTP_UNAUTHORIZED, "The relay refused the key (401 Unauthorized)"),
    403: (FailureClass.HTTP_UNAUTHORIZED, "The relay refused the key (403 Forbidden)"),
    404: (FailureClass.HTTP_NOT_FOUND, "The relay URL was not found (404)"),
    413: (FailureClass.HTTP_TOO_LARGE, "The message is too large for the relay (413)"),
    429: (FailureClass.HTTP_RATE_LIMITED, "The relay is rate limiting (429 Too Many Requests)"),
}


class _RedactSecrets(logging.Filter):
    """Replaces the keys of open transports in httpx/httpcore log records.

    httpcore's DEBUG records show response headers; a careless relay that
    echoes the key in a header must not put it into a log.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        redacted = text
        for secret in self.secrets:
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                redacted = redacted.replace(form, REDACTED)
        if redacted != text:
            record.msg, record.args = redacted, None
        return True

    def add(self, secret: str) -> None:
        self.secrets[secret] = self.secrets.get(secret, 0) + 1

    def remove(self, secret: str) -> None:
        count = self.secrets.get(secret, 0) - 1
        if count > 0:
            self.secrets[secret] = count
        else:
            self.secrets.pop(secret, None)


_LOG_FILTER = _RedactSecrets()
_FILTERED_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.proxy")


def _install_log_filter() -> None:
    for name in _FILTERED_LOGGERS:
        log = logging.getLogger(name)
        if _LOG_FILTER not in log.filters:
            log.addFilter(_LOG_FILTER)


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((link for link in chain(exc) if isinstance(link, kind)), None)


def _retry_after_seconds(value: str) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date), None if unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def tls_summary(ssl_object: Any) -> list[str]:
    """Transcript lines for an ``ssl.SSLObject``: version, cipher, certificate."""
    lines: list[str] = []
    version = ssl_object.version()
    cipher = ssl_object.cipher()
    if cipher:
        lines.append(f"TLS {version}, cipher {cipher[0]} ({cipher[2]} bits)")
    else:
        lines.append(f"TLS {version}")
    cert = ssl_object.getpeercert() or {}
    if cert:

        def name(field: str) -> str:
            parts = [f"{k}={v}" for rdn in cert.get(field, ()) for (k, v) in rdn]
            return ", ".join(parts) or "(none)"

        lines.append(f"certificate subject: {name('subject')}")
        lines.append(f"certificate issuer: {name('issuer')}")
        lines.append(
            f"certificate valid from {cert.get('notBefore', '?')} "
            f"until {cert.get('notAfter', '?')}; verified"
        )
    return lines


class HttpTransport(Transport):
    """POSTs each message to the relay URL; see the module docs."""

    def __init__(
        self,
        settings: Settings,
        secret: str | None,
        on_event: EventSink,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, secret, on_event, clock=clock)
        self._client: httpx.AsyncClient | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._tls_reported = False
        self._ssl_context: ssl.SSLContext | None = None
        self._log_protected = False
        self._encrypted = False
        self._deadline: asyncio.Timeout | None = None
        self._phase = Step.CONNECT
        self.retry_after: float | None = None
        """Seconds the relay asked us to wait (``Retry-After`` of the last 429/503), if any."""

    # -- helpers --------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.settings.http.url

    def _redact(self, text: str) -> str:
        secret = self._secret
        if secret and len(secret) >= 3:
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                text = text.replace(form, REDACTED)
        return text

    def _emit(self, step: Step, direction: Direction, text: str) -> None:
        self.on_event(
            TranscriptEvent(
                step,
                direction,
                self._redact(text),
                self.clock.elapsed_ms(),
                encrypted=self._encrypted,
            )
        )

    def _failure(
        self,
        failure_class: FailureClass,
        step: Step,
        title: str,
        detail: str = "",
        *,
        reply_code: int | None = None,
        reply_text: str = "",
        retryable: bool = False,
    ) -> SendFailure:
        return SendFailure(
            failure_class,
            step,
            self._redact(title),
            self._redact(detail),
            reply_code=reply_code,
            reply_text=self._redact(reply_text),
            retryable=retryable,
        )

    def _protect_logs(self) -> None:
        if self._secret and not self._log_protected:
            _install_log_filter()
            _LOG_FILTER.add(self._secret)
            self._log_protected = True

    def _unprotect_logs(self) -> None:
        if self._secret and self._log_protected:
            _LOG_FILTER.remove(self._secret)
            self._log_protected = False

    def _context(self) -> ssl.SSLContext:
        """The client TLS context, made once: always verified, system trust store."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    # -- the interface ----------------------------------------------------------

    async def open(self) -> None:
        """Check the URL and make a connection check (resolve, connect, TLS); send nothing."""
        url = self.url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in {"http", "https"} or not host:
            raise self._failure(
                FailureClass.PROTOCOL, Step.CONNECT, "The relay URL is not an http(s) URL", url
            )
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        self._protect_logs()
        timeout = self.settings.timeout
        self._emit(Step.RESOLVE, Direction.INFO, f"resolving {host}")
        loop = asyncio.get_running_loop()
        failure: SendFailure | None = None
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as exc:
            failure = self._classify(exc, Step.RESOLVE)
        if failure:
            raise failure
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        self._emit(Step.RESOLVE, Direction.INFO, f"found {', '.join(map(str, addresses))}")
        self._emit(Step.CONNECT, Direction.INFO, f"connecting to {host} port {port}")
        started = self.clock.elapsed_ms()
        writer: asyncio.StreamWriter | None = None
        try:
            _, opened = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=self._context() if https else None,
                    server_hostname=host if https else None,
                    ssl_handshake_timeout=timeout if https else None,
                ),
                timeout,
            )
            writer = opened
            elapsed = self.clock.elapsed_ms() - started
            peer = opened.get_extra_info("peername")
            where = f"{peer[0]} port {peer[1]}" if peer else f"{host} port {port}"
            self._emit(Step.CONNECT, Direction.INFO, f"connected to {where} in {elapsed:.0f} ms")
            ssl_object = opened.get_extra_info("ssl_object")
            if ssl_object is not None:
                for line in tls_summary(ssl_object):
                    self._emit(Step.TLS, Direction.INFO, line)
            else:
                self._emit(
                    Step.CONNECT,
                    Direction.INFO,
                    "plain http:// (allowed to loopback only): the request is not encrypted",
                )
        except (OSError, TimeoutError) as exc:
            failure = self._classify(exc, Step.CONNECT)
        finally:
            if writer is not None:
                writer.close()
                try:
                    await writer.wait_closed()
                except (OSError, ssl.SSLError):
                    pass
        if failure:
            raise failure
        self._client = httpx.AsyncClient(
            verify=self._context(),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT},
        )
        self._emit(
            Step.CONNECT,
            Direction.INFO,
            "HTTP has no session: each message is one POST (the key is sent only then)",
        )

    async def send(self, outgoing: Outgoing) -> SendResult:
        """POST one message; any 2xx is success, everything else a ``SendFailure``."""
        if self._client is None:
            raise self._failure(
                FailureClass.UNEXPECTED, Step.REQUEST, "The transport is not open", ""
            )
        started = self.clock.elapsed_ms()
        body = json.dumps(
            {
                "envelope": {"from": outgoing.sender, "to": list(outgoing.recipients)},
                "message": base64.b64encode(outgoing.as_bytes()).decode("ascii"),
            }
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",  # what _read_bounded can inflate within bounds
        }
        if self._secret:
            if not _KEY_CHARS.fullmatch(self._secret):
                # httpx would raise UnicodeEncodeError (non-ASCII) or h11 a
                # LocalProtocolError whose text, trace event and DEBUG log show
                # the key with its control characters escaped: a form the
                # redactor does not know. So such a key never reaches httpx.
                raise self._failure(
                    FailureClass.HTTP_CLIENT_ERROR,
                    Step.REQUEST,
                    "The relay key cannot be sent: it contains characters an HTTP header "
                    "cannot carry",
                    "a key is printable ASCII without spaces or line breaks (check for a "
                    "pasted line break, an accented letter or a control character); "
                    "nothing was sent",
                )
            headers["Authorization"] = f"Bearer {self._secret}"
        request = self._client.build_request(
            "POST", self.url, content=body, headers=headers, extensions={"trace": self._trace}
        )
        target = request.url.raw_path.decode("ascii", "replace")
        self._emit(
            Step.REQUEST,
            Direction.OUT,
            f"POST {target} HTTP/1.1 (Host: {request.url.netloc.decode()})",
        )
        self._emit(
            Step.REQUEST,
            Direction.OUT,
            "Authorization: Bearer <redacted>" if self._secret else "no Authorization (no key set)",
        )
        self._emit(
            Step.REQUEST,
            Direction.OUT,
            f"JSON body {len(body)} bytes: envelope from {outgoing.sender} to "
            f"{len(outgoing.recipients)} recipient(s), message {len(outgoing.as_bytes())} bytes",
        )
        failure: SendFailure | None = None
        self._phase = Step.CONNECT
        try:
            # httpx's timeouts are per socket read or write: a relay that drips
            # one byte a second, or sends headers forever, never trips them.
            # This deadline holds per step (request, then response); _trace
            # moves it when the request is sent.
            async with asyncio.timeout(self.settings.timeout) as deadline:
                self._deadline = deadline
                result = await self._exchange(request, outgoing, started)
        except TimeoutError:
            failure = self._step_timeout()
        except httpx.HTTPError as exc:
            failure = self._classify(exc, Step.REQUEST)
        except SendFailure as exc:
            failure = exc
        finally:
            self._deadline = None
        if failure:
            # Raised outside the except block: no httpx exception (which holds the
            # request and its Authorization header) stays attached as context.
            raise failure
        return result

    async def _exchange(
        self, request: httpx.Request, outgoing: Outgoing, started: float
    ) -> SendResult:
        assert self._client is not None
        response = await self._client.send(request, stream=True)
        try:
            if not self._tls_reported:
                stream = response.extensions.get("network_stream")
                ssl_object = stream.get_extra_info("ssl_object") if stream else None
                if ssl_object is not None:
                    self._report_tls(ssl_object)
            status_line = f"{response.http_version} {response.status_code} {response.reason_phrase}"
            self._emit(Step.RESPONSE, Direction.IN, status_line)
            for name in RELEVANT_HEADERS:
                value = response.headers.get(name)
                if value is not None:
                    self._emit(Step.RESPONSE, Direction.IN, f"{name}: {value}")
            data = await self._read_bounded(response)
        finally:
            await response.aclose()
        text = data.decode(response.encoding or "utf-8", "replace")
        if text.strip():
            excerpt = " ".join(text.split())
            if len(excerpt) > EXCERPT_CHARS:
                excerpt = excerpt[:EXCERPT_CHARS] + "…"
            self._emit(Step.RESPONSE, Direction.IN, f"body: {excerpt}")
        status = response.status_code
        # The result outlives this object (send log, "queue id" line): server
        # words in it are redacted like every event.
        reply = self._redact(f"{status} {response.reason_phrase}".strip())
        if 200 <= status < 300:
            queue_id = self._redact(_queue_id(data))
            elapsed = self.clock.elapsed_ms() - started
            return SendResult(
                message_id=outgoing.message_id,
                queue_id=queue_id,
                reply=f"{reply} (id {queue_id})" if queue_id else reply,
                accepted=outgoing.recipients,
                elapsed_ms=elapsed,
            )
        raise self._status_failure(response, reply, text)

    async def _read_bounded(self, response: httpx.Response) -> bytes:
        """At most ``BODY_LIMIT`` bytes of the body, decompressed within the same bound.

        httpx's ``aiter_bytes`` inflates each received chunk whole: 50 KB of
        gzip can become 50 MB in one call (a "zip bomb"). So the raw bytes are
        read and a gzip/deflate body is inflated here with ``max_length``.
        """
        inflate = _inflater(response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            chunk = inflate(raw, BODY_LIMIT - size) if inflate else raw
            chunks.append(chunk)
            size += len(chunk)
            if size >= BODY_LIMIT:
                self._emit(
                    Step.RESPONSE, Direction.INFO, f"body longer than {BODY_LIMIT} bytes: cut"
                )
                break
        return b"".join(chunks)[:BODY_LIMIT]

    def _status_failure(self, response: httpx.Response, reply: str, text: str) -> SendFailure:
        status = response.status_code
        detail = _error_text(text) or reply
        retry_after = _retry_after_seconds(response.headers.get("retry-after", ""))
        if status in (429, 503):
            self.retry_after = retry_after
        if retry_after is not None:
            detail += f" (Retry-After: {retry_after:.0f} s)"
        if 300 <= status < 400:
            location = response.headers.get("location", "(no Location header)")
            return self._failure(
                FailureClass.HTTP_REDIRECT,
                Step.RESPONSE,
                f"The relay answered with a redirect ({status}); it was not followed",
                f"{reply} to {location}: put the final URL in the settings "
                "(the key is never sent to a redirected address)",
                reply_code=status,
                reply_text=reply,
            )
        if status in _STATUS_CLASSES:
            failure_class, title = _STATUS_CLASSES[status]
            return self._failure(
                failure_class,
                Step.RESPONSE,
                title,
                detail,
                reply_code=status,
                reply_text=reply,
                retryable=status == 429,
            )
        if 500 <= status < 600:  # 600+ is not HTTP: the fallback below
            return self._failure(
                FailureClass.HTTP_SERVER_ERROR,
                Step.RESPONSE,
                f"The relay had a problem ({status})",
                detail,
                reply_code=status,
                reply_text=reply,
                retryable=True,
            )
        if 400 <= status < 500:
            return self._failure(
                FailureClass.HTTP_CLIENT_ERROR,
                Step.RESPONSE,
                f"The relay refused the request ({status})",
                detail,
                reply_code=status,
                reply_text=reply,
            )
        return self._failure(
            FailureClass.HTTP_BAD_RESPONSE,
            Step.RESPONSE,
            f"The relay answered with an unexpected status ({status})",
            detail,
            reply_code=status,
            reply_text=reply,
        )

    def _step_timeout(self) -> SendFailure:
        """The failure when the per-step deadline passed (see ``send``)."""
        within = f"{self.settings.timeout:g} s"
        if self._phase is Step.CONNECT:
            return self._failure(
                FailureClass.CONNECT_TIMEOUT,
                Step.CONNECT,
                f"Timed out after {within} connecting to the relay",
                f"no connection within {within}",
                retryable=True,
            )
        if self._phase is Step.REQUEST:
            return self._failure(
                FailureClass.TIMEOUT,
                Step.REQUEST,
                f"Sending the request to the relay took longer than {within}",
                f"the request was not sent within {within}",
                retryable=True,
            )
        return self._failure(
            FailureClass.TIMEOUT,
            Step.RESPONSE,
            f"The relay did not answer within {within}",
            f"no complete answer within {within} (a reply that never ends, or arrives "
            "a few bytes at a time)",
            retryable=True,
        )

    def _next_step(self, step: Step) -> None:
        """A new step starts: it gets the whole timeout."""
        self._phase = step
        if self._deadline is not None:
            loop = asyncio.get_running_loop()
            self._deadline.reschedule(loop.time() + self.settings.timeout)

    def _report_tls(self, ssl_object: Any) -> None:
        self._tls_reported = True
        for line in tls_summary(ssl_object):
            self._emit(Step.TLS, Direction.INFO, line)
        self._encrypted = True

    async def _trace(self, name: str, info: dict[str, Any]) -> None:
        """httpx/httpcore ``trace`` extension: one transcript line per event that matters."""
        if name == "connection.connect_tcp.started":
            self._encrypted = False
            self._emit(
                Step.CONNECT,
                Direction.INFO,
                f"connecting to {info.get('host')} port {info.get('port')}",
            )
        elif name == "connection.connect_tcp.complete":
            self._next_step(Step.REQUEST)
            stream = info.get("return_value")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            where = f" ({peer[0]} port {peer[1]})" if peer else ""
            self._emit(Step.CONNECT, Direction.INFO, f"connected{where}")
        elif name == "connection.start_tls.started":
            self._emit(Step.TLS, Direction.INFO, "TLS handshake (certificate verified)")
        elif name == "connection.start_tls.complete":
            stream = info.get("return_value")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            if ssl_object is not None:
                self._report_tls(ssl_object)
        elif name == "http11.send_request_headers.started" and self._phase is Step.CONNECT:
            self._next_step(Step.REQUEST)  # a reused connection: no connect events
        elif name == "http11.send_request_headers.complete":
            self._emit(Step.REQUEST, Direction.INFO, "request headers sent")
        elif name == "http11.send_request_body.complete":
            self._next_step(Step.RESPONSE)
            self._emit(Step.REQUEST, Direction.INFO, "request body sent; waiting for the reply")
        elif name == "http11.receive_response_headers.complete":
            self._emit(Step.RESPONSE, Direction.INFO, "response headers received")
        elif name.endswith(".failed"):
            exc = info.get("exception")
            what = name.rsplit(".", 2)[-2].replace("_", " ")
            self._emit(Step.REQUEST, Direction.INFO, f"{what} failed: {type(exc).__name__}: {exc}")

    def _classify(self, exc: BaseException, step: Step) -> SendFailure:
        """A ``SendFailure`` for a library or socket exception (the cause chain walked)."""
        detail = f"{type(exc).__name__}: {exc}"
        for link in chain(exc):
            if str(link) and link is not exc:
                detail = f"{type(exc).__name__}: {exc} ({type(link).__name__}: {link})"
        cert = _find(exc, ssl.SSLCertVerificationError)
        if isinstance(cert, ssl.SSLCertVerificationError):
            failure_class, title = _CERT_CODES.get(
                cert.verify_code or 0,
                (FailureClass.CERT_INVALID, "The server's certificate was not accepted"),
            )
            message = cert.verify_message or str(cert)
            return self._failure(failure_class, Step.TLS, title, message)
        gai = _find(exc, socket.gaierror)
        if gai is not None:
            return self._failure(
                FailureClass.DNS, Step.RESOLVE, "The relay host name was not found", str(gai)
            )
        if _find(exc, ConnectionRefusedError) is not None:
            return self._failure(
                FailureClass.REFUSED,
                Step.CONNECT,
                "The connection was refused (nothing listens on that port)",
                detail,
            )
        if isinstance(exc, httpx.ConnectTimeout) or (
            step in (Step.RESOLVE, Step.CONNECT) and _find(exc, TimeoutError) is not None
        ):
            return self._failure(
                FailureClass.CONNECT_TIMEOUT,
                Step.CONNECT if step is not Step.RESOLVE else Step.RESOLVE,
                f"Timed out after {self.settings.timeout:g} s connecting to the relay",
                detail,
                retryable=True,
            )
        if isinstance(exc, httpx.TimeoutException) or _find(exc, TimeoutError) is not None:
            return self._failure(
                FailureClass.TIMEOUT,
                Step.REQUEST if isinstance(exc, httpx.WriteTimeout) else Step.RESPONSE,
                f"The relay did not answer within {self.settings.timeout:g} s",
                detail,
                retryable=True,
            )
        tls = _find(exc, ssl.SSLError)
        if isinstance(tls, ssl.SSLError):
            reason = str(getattr(tls, "reason", "") or tls)
            if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
                failure_class = FailureClass.TLS_WRONG_VERSION
                title = "The server does not speak TLS on this port (is the URL http://?)"
            elif any(k in reason for k in ("DH_KEY_TOO_SMALL", "UNSUPPORTED_PROTOCOL", "VERSION")):
                failure_class = FailureClass.TLS_OUTDATED
                title = "The server's TLS is outdated"
            else:
                failure_class = FailureClass.TLS_HANDSHAKE
                title = "The TLS handshake failed"
            return self._failure(failure_class, Step.TLS, title, detail)
        os_error = _find(exc, OSError)
        if isinstance(os_error, OSError) and os_error.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
        ):
            return self._failure(
                FailureClass.UNREACHABLE, Step.CONNECT, "The relay host is unreachable", detail
            )
        if isinstance(exc, httpx.RemoteProtocolError) and "without sending" in str(exc):
            return self._failure(
                FailureClass.DISCONNECTED,
                Step.RESPONSE,
                "The relay closed the connection without answering",
                detail,
                retryable=True,
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
            return self._failure(
                FailureClass.HTTP_BAD_RESPONSE,
                Step.RESPONSE,
                "The relay's answer is not valid HTTP",
                detail,
            )
        if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError) or (
            isinstance(exc, ConnectionError)
        ):
            return self._failure(
                FailureClass.DISCONNECTED,
                step,
                "The connection to the relay was lost",
                detail,
                retryable=True,
            )
        if isinstance(exc, httpx.ConnectError | OSError):
            return self._failure(
                FailureClass.UNREACHABLE, Step.CONNECT, "Could not connect to the relay", detail
            )
        return self._failure(
            FailureClass.UNEXPECTED, step, "The request to the relay failed", detail
        )

    async def close(self) -> None:
        """Close the HTTP client (its pooled connections). Never raises."""
        client, self._client = self._client, None
        try:
            if client is not None:
                await client.aclose()
        except Exception:  # noqa: BLE001 - closing must never fail a send
            pass
        finally:
            self._unprotect_logs()

    def abort(self) -> None:
        """Close the client at once (cancellation); in-flight requests end with it."""
        client, self._client = self._client, None
        if client is None:
            self._unprotect_logs()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._unprotect_logs()
            return
        task = loop.create_task(client.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        task.add_done_callback(lambda _: self._unprotect_logs())


def _inflater(content_encoding: str) -> Callable[[bytes, int], bytes] | None:
    """A bounded decompressor for a gzip/deflate body; None for anything else.

    Other encodings (br, zstd, several stacked) are kept as received: the body
    is only an excerpt and an error text, never worth an unbounded inflate.
    """
    encoding = content_encoding.strip().lower()
    if encoding in {"gzip", "x-gzip"}:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib header (or gzip)
    else:
        return None

    def inflate(data: bytes, room: int) -> bytes:
        try:
            return inflater.decompress(data, max(room, 1))
        except zlib.error:
            return b""  # a corrupt body: nothing more to show

    return inflate


def _queue_id(data: bytes) -> str:
    """The relay's id from a JSON ``{"id": ...}`` reply; empty for anything else."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return ""
    if isinstance(document, dict):
        value = document.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if text.isprintable() and len(text) <= 200:
                return text
    return ""


def _error_text(text: str) -> str:
    """A short reason from an error body: JSON ``error``/``message``/``detail``, or the text."""
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        for key in ("error", "message", "detail"):
            value = document.get(key)
            if isinstance(value, str) and value:
                return value[:EXCERPT_CHARS]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:EXCERPT_CHARS]
    compact = " ".join(text.split())
    return compact[:EXCERPT_CHARS]


__all__ = ["BODY_LIMIT", "HttpTransport", "tls_summary"]
