"""OAuth2 sign-in for SMTP (XOAUTH2): the device authorization grant and token refresh.

Office 365 / Outlook ends basic authentication for SMTP AUTH; the replacement is
SASL XOAUTH2 with an access token for the scope ``SMTP.Send``. A sysadmin works
over SSH with no browser on the server, so the sign-in is the OAuth 2.0 device
authorization grant (RFC 8628): smtpdesk shows a short code and a URL, the user
signs in on any device (a phone), and smtpdesk polls the token endpoint until
the sign-in is complete. Refreshing uses the refresh grant (RFC 6749 section 6).

Why not msal: msal 1.39 can be pointed at a loopback HTTPS authority (with
``instance_discovery=False``, a ``requests.Session`` whose ``verify`` is the
test CA, *and* ``trust_env=False``, because ``REQUESTS_CA_BUNDLE`` silently
overrides ``verify``), but its device-flow loop is blocking ``time.sleep(1)``
steps with no injectable clock (a pending → slow_down → success run took 12 s),
it can only be cancelled by mutating the flow dict from another thread, it finds
no account to refresh when the server sends no ``id_token``/``client_info``, it
needs OpenID discovery (a generic provider with just two URLs does not fit), and
it adds ``requests`` and PyJWT. The two grants are two form POSTs; they are done
here with httpx, async and cancellable, in this one module.

Who calls what:

- ``OAuthService.start_device_flow`` → ``DeviceCode`` (show ``user_code`` and
  ``verification_uri`` large; ``message`` is the provider's own sentence);
  then ``OAuthService.poll`` (honours ``interval`` and ``slow_down``; cancel with
  an ``asyncio.Event`` or by cancelling the task) stores the sign-in. ``login``
  does both with a callback that shows the code.
- ``OAuthService.get_access_token`` → the access token, refreshed when it
  expires within five minutes (or on demand after a 535: ``force_refresh``);
  ``token_generator`` wraps it as aiosmtplib's ``oauth_token_generator``.
- ``OAuthService.status`` / ``logout``: what is stored (never a token) / forget it.

Where the tokens live. The refresh token is a secret under every rule of the
password: in the keyring (service ``smtpdesk``, user ``oauth:<username>@<host>``,
a small JSON value with the refresh token and which app and endpoint issued it),
never in a file or a log. Where no keyring works, the sign-in refuses to start
(before any code is shown) and says what to do; a refresh token can instead
come from the ``SMTPDESK_OAUTH_REFRESH_TOKEN`` environment variable (used, never
written back). The access token stays in this process's memory with its expiry.

``status``, ``logout`` and the keyring steps are blocking (a keyring may wait on
D-Bus): the async methods run them with ``asyncio.to_thread``; a TUI calls
``status``/``logout`` from thread workers. No Textual import here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import ssl
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from transports.settings import OAuthProvider, Settings
from tui.secrets import SERVICE, load_keyring

__all__ = [
    "DEVICE_CODE_GRANT",
    "LOGIN_COMMAND",
    "MICROSOFT_AUTHORITY",
    "MICROSOFT_SCOPE",
    "NO_KEYRING_HELP",
    "REFRESH_MARGIN",
    "REFRESH_TOKEN_ENV",
    "DeviceCode",
    "Endpoints",
    "OAuthError",
    "OAuthFailure",
    "OAuthService",
    "OAuthStatus",
    "PollUpdate",
    "TokenGenerator",
    "endpoints",
    "keyring_user",
]

logger = logging.getLogger(__name__)

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
MICROSOFT_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
"""SMTP.Send for XOAUTH2, and offline_access for a refresh token."""
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOGIN_COMMAND = "smtpdesk oauth login"
"""The exact command every "sign in again" message names."""
REFRESH_TOKEN_ENV = "SMTPDESK_OAUTH_REFRESH_TOKEN"
REFRESH_MARGIN = 300.0
"""An access token expiring within this many seconds is refreshed first."""
SLOW_DOWN_STEP = 5
"""Seconds added to the polling interval on ``slow_down`` (RFC 8628 section 3.5)."""
DEFAULT_INTERVAL = 5
MAX_BODY = 64 * 1024
"""Bytes of an answer read; a longer answer is not a token endpoint's."""
MAX_NETWORK_RETRIES = 3
"""Consecutive network failures tolerated while polling before giving up."""

NO_KEYRING_HELP = (
    "No keyring is available on this machine (usual on a server reached over SSH: there is "
    "no desktop Secret Service or D-Bus session), so smtpdesk cannot keep the OAuth2 "
    "sign-in: its refresh token is a secret like a password, and smtpdesk never writes it "
    "to a plain-text file. Either:\n"
    "  1. make a keyring available: run smtpdesk inside `dbus-run-session` with "
    "gnome-keyring-daemon unlocked, or choose an encrypted-file keyring backend with "
    "PYTHON_KEYRING_BACKEND (for example keyrings.cryptfile); or\n"
    f"  2. give smtpdesk a refresh token in the {REFRESH_TOKEN_ENV} environment variable, "
    "set by the service or script that runs it (it is used, never stored or updated)."
)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class OAuthFailure(StrEnum):
    """What went wrong, for the UI to pick its words and the CLI its exit code."""

    NOT_CONFIGURED = "not_configured"
    """A setting the sign-in needs is missing (the message names it); exit code 2."""
    NO_KEYRING = "no_keyring"
    """Nowhere safe to keep the refresh token (``NO_KEYRING_HELP``)."""
    UNREACHABLE = "unreachable"
    """The sign-in server could not be reached or did not answer in time."""
    TLS = "tls"
    """The sign-in server's certificate was not trusted."""
    SERVER_ERROR = "server_error"
    """The server answered with an error this module has no better words for."""
    BAD_RESPONSE = "bad_response"
    """The answer was not a valid OAuth answer (not JSON, fields missing)."""
    UNKNOWN_CLIENT = "unknown_client"
    """The client id is not known to the server (AADSTS700016, invalid_client)."""
    PUBLIC_CLIENT_DISABLED = "public_client_disabled"
    """The app registration does not allow public client flows (AADSTS7000218)."""
    TENANT_NOT_FOUND = "tenant_not_found"
    """The tenant does not exist (AADSTS90002)."""
    EXPIRED = "expired"
    """The code expired before anyone completed the sign-in."""
    ACCESS_DENIED = "access_denied"
    """The user (or an administrator's policy) declined."""
    CANCELLED = "cancelled"
    """The sign-in was cancelled through the cancel event."""
    NOT_SIGNED_IN = "not_signed_in"
    """No refresh token is stored for this account."""
    SIGN_IN_AGAIN = "sign_in_again"
    """The stored sign-in was rejected (revoked, expired, another app)."""


class OAuthError(Exception):
    """A sign-in or token failure in plain words, saying what to do. Never a token."""

    def __init__(self, kind: OAuthFailure, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        """True when the same request may work later (network, server 5xx)."""

    @property
    def message(self) -> str:
        """The plain-words text (the same as ``str(error)``)."""
        return str(self)


# --- endpoints and names -------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """Where the sign-in goes, and for which scope."""

    device_authorization_url: str
    token_url: str
    scope: str


def endpoints(settings: Settings) -> Endpoints:
    """The endpoints for the settings' provider (Microsoft: from the tenant)."""
    oauth = settings.oauth
    if oauth.provider is OAuthProvider.MICROSOFT:
        base = f"{MICROSOFT_AUTHORITY}/{oauth.tenant}/oauth2/v2.0"
        return Endpoints(f"{base}/devicecode", f"{base}/token", MICROSOFT_SCOPE)
    return Endpoints(oauth.device_authorization_url, oauth.token_url, oauth.scope)


def keyring_user(settings: Settings) -> str:
    """The keyring user of the sign-in: ``oauth:<username>@<host>``."""
    return f"oauth:{settings.smtp.username}@{settings.smtp.host}"


def _check_configured(settings: Settings) -> Endpoints:
    """The endpoints, or ``NOT_CONFIGURED`` naming the missing setting."""
    missing: list[str] = []
    if not settings.smtp.username:
        missing.append("smtp.username (the mailbox that signs in)")
    if not settings.smtp.host:
        missing.append("smtp.host")
    if not settings.oauth.client_id:
        missing.append("oauth.client_id (the Application (client) ID of your app registration)")
    found = endpoints(settings)
    if settings.oauth.provider is OAuthProvider.MICROSOFT:
        if not settings.oauth.tenant:
            missing.append("oauth.tenant")
    else:
        for name in ("device_authorization_url", "token_url", "scope"):
            if not getattr(found, name):
                missing.append(f"oauth.{name}")
    if missing:
        raise OAuthError(
            OAuthFailure.NOT_CONFIGURED,
            "OAuth2 sign-in is not set up: set " + ", ".join(missing) + " in the settings",
        )
    return found


def _clean(text: str, limit: int = 300) -> str:
    """Server text made safe to show: no control characters (terminal escapes), one line."""
    out = "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in text)
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- what the service hands out ------------------------------------------------------


@dataclass(frozen=True)
class DeviceCode:
    """A started sign-in: show ``user_code`` and ``verification_uri``, then ``poll``."""

    user_code: str
    """The short code the user types on the sign-in page (show it large)."""
    verification_uri: str
    """The page to open on any device (Microsoft: https://microsoft.com/devicelogin)."""
    verification_uri_complete: str | None
    """The page with the code filled in, when the server offers one (for a QR code)."""
    expires_in: int
    """Seconds the code stays valid."""
    interval: int
    """Seconds between polls the server asked for."""
    message: str
    """One sentence saying what to do (the provider's own, or ours)."""
    device_code: str = field(repr=False)
    """The polling credential: never shown, never logged."""
    issued_at: float = field(repr=False)
    """The service clock when the code was issued."""

    @property
    def expires_at(self) -> float:
        """The service clock time at which the code expires."""
        return self.issued_at + self.expires_in


@dataclass(frozen=True)
class PollUpdate:
    """Progress while waiting for the user, for a countdown or a status line."""

    attempt: int
    """Polls made so far."""
    interval: int
    """Seconds until the next poll."""
    seconds_left: float
    """Until the code expires."""
    state: Literal["waiting", "slow_down", "retrying"]
    """``slow_down``: the server asked for a longer interval; ``retrying``: a network
    failure that will be retried."""


@dataclass(frozen=True)
class OAuthStatus:
    """What is stored for an account, never a token."""

    account: str
    """The mailbox (``smtp.username``)."""
    signed_in: bool
    source: Literal["keyring", "env", "none"]
    """Where the refresh token comes from."""
    description: str
    """Plain words: where it is stored, or what to do."""
    client_id: str = ""
    scope: str = ""
    signed_in_at: float | None = None
    refreshed_at: float | None = None
    access_token_expires_at: float | None = None
    """Expiry of the access token held in this process, if any."""

    def lines(self) -> list[str]:
        """Human-readable lines for ``smtpdesk oauth status``."""
        lines = [f"account: {self.account or '(no username set)'}", self.description]
        if self.client_id:
            lines.append(f"client id: {self.client_id}")
        if self.scope:
            lines.append(f"scope: {self.scope}")
        if self.signed_in_at is not None:
            lines.append(f"signed in: {_when(self.signed_in_at)}")
        if self.refreshed_at is not None:
            lines.append(f"last refreshed: {_when(self.refreshed_at)}")
        if self.access_token_expires_at is not None:
            lines.append(f"access token valid until: {_when(self.access_token_expires_at)}")
        return lines


@dataclass(frozen=True)
class _Tokens:
    """A token answer; the secrets are kept out of ``repr``."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(repr=False)
    scope: str


@dataclass(frozen=True)
class _Grant:
    """What the keyring entry holds: the refresh token and who issued it."""

    refresh_token: str = field(repr=False)
    client_id: str
    token_url: str
    scope: str
    signed_in_at: float | None
    refreshed_at: float | None

    def dumps(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "refresh_token": self.refresh_token,
                "client_id": self.client_id,
                "token_url": self.token_url,
                "scope": self.scope,
                "signed_in_at": self.signed_in_at,
                "refreshed_at": self.refreshed_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> _Grant | None:
        """The grant, or ``None`` when the entry is not one of ours (never echoed)."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str):
            return None

        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) else None

        return cls(
            refresh_token=data["refresh_token"],
            client_id=str(data.get("client_id", "")),
            token_url=str(data.get("token_url", "")),
            scope=str(data.get("scope", "")),
            signed_in_at=number("signed_in_at"),
            refreshed_at=number("refreshed_at"),
        )


@dataclass(frozen=True)
class _Cached:
    tokens: _Tokens
    client_id: str
    token_url: str


class TokenGenerator:
    """aiosmtplib's ``oauth_token_generator`` (``Callable[[], Awaitable[str]]``).

    Calling it returns a fresh-enough access token; ``refresh()`` forces a new
    one (after a 535 to an XOAUTH2 attempt, once).
    """

    def __init__(self, service: OAuthService, settings: Settings) -> None:
        self._service = service
        self._settings = settings

    async def __call__(self) -> str:
        return await self._service.get_access_token(self._settings)

    async def refresh(self) -> str:
        """A new access token from the token endpoint, even if the cached one is valid."""
        return await self._service.get_access_token(self._settings, force_refresh=True)

    def __repr__(self) -> str:
        return f"<TokenGenerator {keyring_user(self._settings)!r}>"


# --- the service ---------------------------------------------------------------------


class OAuthService:
    """Device-code sign-in, token refresh and storage for the settings' account.

    One instance per process (the CLI's run, the TUI's app): it keeps the
    access tokens in memory. Everything it talks to can be injected for tests:
    ``verify`` (an ``ssl.SSLContext`` trusting a test CA), ``http_transport``,
    ``sleep`` and ``clock`` (wall-clock seconds).
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        trust_env: bool = True,
    ) -> None:
        self._verify = verify
        self._transport = http_transport
        self._sleep = sleep
        self._clock = clock
        self._trust_env = trust_env
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"<OAuthService accounts={len(self._cache)}>"

    # --- HTTP ------------------------------------------------------------------------

    async def _post(
        self, url: str, form: dict[str, str], timeout: float
    ) -> tuple[int, dict[str, Any]]:
        """POST a form; the status and the JSON object answered (``{}`` if none)."""
        host = urlsplit(url).hostname or url
        try:
            async with (
                httpx.AsyncClient(
                    verify=self._verify,
                    transport=self._transport,
                    trust_env=self._trust_env,
                    follow_redirects=False,
                    timeout=timeout,
                    headers={"Accept": "application/json", "User-Agent": "smtpdesk"},
                ) as client,
                client.stream("POST", url, data=form) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise OAuthError(
                            OAuthFailure.BAD_RESPONSE,
                            f"The sign-in server {host} sent an answer larger than "
                            f"{MAX_BODY // 1024} KiB: that is not an OAuth answer; check the URL",
                        )
                status = response.status_code
        except httpx.TimeoutException:
            raise OAuthError(
                OAuthFailure.UNREACHABLE,
                f"The sign-in server {host} did not answer within {timeout:g} s: check the "
                "network (a proxy or firewall?) and try again",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise _network_error(exc, host) from None
        try:
            data = json.loads(bytes(body))
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if status >= 500:
                raise OAuthError(
                    OAuthFailure.SERVER_ERROR,
                    f"The sign-in server {host} has trouble (HTTP {status}): try again later",
                    retryable=True,
                )
            raise OAuthError(
                OAuthFailure.BAD_RESPONSE,
                f"The sign-in server {host} answered HTTP {status} without an OAuth JSON "
                "answer: check the URL in the settings",
            )
        return status, data

    # --- device flow -----------------------------------------------------------------

    async def start_device_flow(self, settings: Settings) -> DeviceCode:
        """Ask for a device code (RFC 8628 section 3.1–3.2).

        The keyring is checked first, so a sign-in never starts when its result
        could not be kept. (The sign-in is always stored in the keyring; while
        ``SMTPDESK_OAUTH_REFRESH_TOKEN`` is set, that variable still wins.)

        Raises:
            OAuthError: not configured, no keyring, server unreachable, unknown
                client, tenant not found, public client flows disabled, …
        """
        found = _check_configured(settings)
        await asyncio.to_thread(self._probe_keyring, settings)
        status, data = await self._post(
            found.device_authorization_url,
            {"client_id": settings.oauth.client_id, "scope": found.scope},
            settings.timeout,
        )
        if status != 200 or "error" in data:
            raise _error_from_answer(settings, found.device_authorization_url, status, data)
        return self._device_code(found.device_authorization_url, data)

    def _device_code(self, url: str, data: dict[str, Any]) -> DeviceCode:
        host = urlsplit(url).hostname or url

        def bad(what: str) -> OAuthError:
            return OAuthError(
                OAuthFailure.BAD_RESPONSE,
                f"The sign-in server {host} sent an incomplete device code answer ({what}): "
                "check oauth.device_authorization_url",
            )

        device_code = data.get("device_code")
        user_code = data.get("user_code")
        # Microsoft's v1 endpoint and some providers say verification_url.
        uri = data.get("verification_uri", data.get("verification_url"))
        if not isinstance(device_code, str) or not device_code:
            raise bad("no device_code")
        if not isinstance(user_code, str) or not _clean(user_code, 64):
            raise bad("no user_code")
        if not isinstance(uri, str) or not _is_web_url(uri):
            raise bad("no https verification_uri")
        complete = data.get("verification_uri_complete")
        complete = complete if isinstance(complete, str) and _is_web_url(complete) else None
        expires_in = _seconds(data.get("expires_in"))
        if expires_in is None or expires_in <= 0:
            raise bad("no expires_in")
        interval = _seconds(data.get("interval"))
        interval = DEFAULT_INTERVAL if interval is None or interval <= 0 else interval
        user_code = _clean(user_code, 64)
        uri = _clean(uri, 500)
        message = data.get("message")
        text = _clean(message, 500) if isinstance(message, str) else ""
        if not text or user_code not in text:
            text = f"On any device, open {uri} and enter the code {user_code} to sign in."
        return DeviceCode(
            user_code=user_code,
            verification_uri=uri,
            verification_uri_complete=_clean(complete, 500) if complete else None,
            expires_in=expires_in,
            interval=min(interval, 60),
            message=text,
            device_code=device_code,
            issued_at=self._clock(),
        )

    async def _wait(self, seconds: float, cancel: asyncio.Event | None) -> None:
        """Sleep (the injected sleep), ending early with ``CANCELLED`` when ``cancel`` is set."""
        if cancel is None:
            await self._sleep(seconds)
            return
        if not cancel.is_set():
            sleeper = asyncio.ensure_future(self._sleep(seconds))
            waiter = asyncio.ensure_future(cancel.wait())
            try:
                await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waiter):
                    task.cancel()
                await asyncio.gather(sleeper, waiter, return_exceptions=True)
        if cancel.is_set():
            raise _cancelled()

    async def poll(
        self,
        settings: Settings,
        code: DeviceCode,
        *,
        cancel: asyncio.Event | None = None,
        on_update: Callable[[PollUpdate], None] | None = None,
    ) -> OAuthStatus:
        """Wait for the user to sign in, then store the sign-in (RFC 8628 section 3.4–3.5).

        Polls every ``code.interval`` seconds, five more after each
        ``slow_down``; tolerates a few network failures in a row. Cancel by
        setting ``cancel`` (→ ``OAuthError(CANCELLED)``) or by cancelling the task.

        Returns:
            The status of the new sign-in.

        Raises:
            OAuthError: expired code, access denied, unknown client, network,
                no keyring to store the result, cancelled.
        """
        found = _check_configured(settings)
        interval = code.interval
        attempt = 0
        failures = 0
        state: Literal["waiting", "slow_down", "retrying"] = "waiting"
        while True:
            if on_update is not None:
                left = max(code.expires_at - self._clock(), 0.0)
                on_update(PollUpdate(attempt, interval, left, state))
            await self._wait(interval, cancel)
            if self._clock() >= code.expires_at:
                raise _expired(code, pending=True)
            attempt += 1
            try:
                status, data = await self._post(
                    found.token_url,
                    {
                        "grant_type": DEVICE_CODE_GRANT,
                        "client_id": settings.oauth.client_id,
                        "device_code": code.device_code,
                    },
                    settings.timeout,
                )
            except OAuthError as exc:
                failures += 1
                if not exc.retryable or failures >= MAX_NETWORK_RETRIES:
                    raise
                logger.info("sign-in poll failed (%s), retrying", exc.kind)
                state = "retrying"
                continue
            if cancel is not None and cancel.is_set():
                raise _cancelled()
            failures = 0
            error = data.get("error")
            if status == 200 and error is None:
                tokens = self._tokens(found.token_url, data, need_refresh_token=True)
                return await self._signed_in(settings, found, tokens)
            if error == "authorization_pending":
                state = "waiting"
                continue
            if error == "slow_down":
                interval += SLOW_DOWN_STEP
                state = "slow_down"
                continue
            if error in {"expired_token", "code_expired"}:
                raise _expired(code, pending=False)
            if error in {"access_denied", "authorization_declined"}:
                raise OAuthError(
                    OAuthFailure.ACCESS_DENIED,
                    "The sign-in was declined (access_denied): the account said no, or an "
                    "administrator's policy refused the permission. If an administrator "
                    "must consent to SMTP.Send for your app, ask them; then sign in again: "
                    f"{LOGIN_COMMAND}",
                )
            raise _error_from_answer(settings, found.token_url, status, data)

    async def login(
        self,
        settings: Settings,
        show: Callable[[DeviceCode], Awaitable[None] | None],
        *,
        cancel: asyncio.Event | None = None,
        on_update: Callable[[PollUpdate], None] | None = None,
    ) -> OAuthStatus:
        """``start_device_flow``, ``show(code)`` (sync or async), then ``poll``."""
        code = await self.start_device_flow(settings)
        shown = show(code)
        if shown is not None:
            await shown
        return await self.poll(settings, code, cancel=cancel, on_update=on_update)

    async def _signed_in(
        self, settings: Settings, found: Endpoints, tokens: _Tokens
    ) -> OAuthStatus:
        now = self._clock()
        assert tokens.refresh_token is not None
        grant = _Grant(
            refresh_token=tokens.refresh_token,
            client_id=settings.oauth.client_id,
            token_url=found.token_url,
            scope=tokens.scope or found.scope,
            signed_in_at=now,
            refreshed_at=None,
        )
        await asyncio.to_thread(self._save, settings, grant)
        self._cache[keyring_user(settings)] = _Cached(
            tokens, settings.oauth.client_id, found.token_url
        )
        logger.info(
            "signed in as %s; access token valid for %d s",
            settings.smtp.username,
            int(tokens.expires_at - now),
        )
        return await asyncio.to_thread(self.status, settings)

    def _tokens(self, url: str, data: dict[str, Any], *, need_refresh_token: bool) -> _Tokens:
        host = urlsplit(url).hostname or url
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError(
                OAuthFailure.BAD_RESPONSE,
                f"The sign-in server {host} answered without an access token: check "
                "oauth.token_url",
            )
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise OAuthError(
                OAuthFailure.BAD_RESPONSE,
                f"The sign-in server {host} issued a token of type "
                f"{_clean(str(token_type), 40)!r}; XOAUTH2 needs a Bearer token",
            )
        refresh = data.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh else None
        if need_refresh_token and refresh is None:
            raise OAuthError(
                OAuthFailure.BAD_RESPONSE,
                f"The sign-in server {host} gave no refresh token, so the sign-in could not "
                "be kept: the scope must include offline access (offline_access for "
                "Microsoft); check oauth.scope",
            )
        expires_in = _seconds(data.get("expires_in"))
        expires_in = 3600 if expires_in is None or expires_in <= 0 else expires_in
        scope = data.get("scope")
        return _Tokens(
            access_token=access,
            expires_at=self._clock() + expires_in,
            refresh_token=refresh,
            scope=_clean(scope, 500) if isinstance(scope, str) else "",
        )

    # --- access tokens -----------------------------------------------------------------

    def token_generator(self, settings: Settings) -> TokenGenerator:
        """aiosmtplib's ``oauth_token_generator`` for this account (with ``refresh()``)."""
        return TokenGenerator(self, settings)

    def forget_access_token(self, settings: Settings) -> None:
        """Drop the access token held in memory (the next call refreshes)."""
        self._cache.pop(keyring_user(settings), None)

    async def get_access_token(self, settings: Settings, *, force_refresh: bool = False) -> str:
        """An access token valid for at least ``REFRESH_MARGIN`` more seconds.

        Refreshes with the stored refresh token when the one in memory expires
        within five minutes, is missing, was issued for other settings, or when
        ``force_refresh`` (after a 535: once). A rotated refresh token is saved
        back to the keyring.

        Raises:
            OAuthError: ``NOT_SIGNED_IN`` / ``SIGN_IN_AGAIN`` (the message names
                ``smtpdesk oauth login``), ``NO_KEYRING``, network failures
                (``retryable``), ``UNKNOWN_CLIENT``.
        """
        found = _check_configured(settings)
        key = keyring_user(settings)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if (
                cached is not None
                and not force_refresh
                and cached.client_id == settings.oauth.client_id
                and cached.token_url == found.token_url
                and cached.tokens.expires_at - self._clock() > REFRESH_MARGIN
            ):
                return cached.tokens.access_token
            grant, source = await asyncio.to_thread(self._load, settings, found)
            tokens = await self._refresh(settings, found, grant, source)
            self._cache[key] = _Cached(tokens, settings.oauth.client_id, found.token_url)
            if source == "keyring":
                updated = _Grant(
                    refresh_token=tokens.refresh_token or grant.refresh_token,
                    client_id=grant.client_id,
                    token_url=grant.token_url,
                    scope=tokens.scope or grant.scope,
                    signed_in_at=grant.signed_in_at,
                    refreshed_at=self._clock(),
                )
                await asyncio.to_thread(self._save, settings, updated)
            logger.info(
                "access token for %s refreshed; valid until %s",
                settings.smtp.username,
                _when(tokens.expires_at),
            )
            return tokens.access_token

    async def _refresh(
        self, settings: Settings, found: Endpoints, grant: _Grant, source: str
    ) -> _Tokens:
        status, data = await self._post(
            found.token_url,
            {
                "grant_type": "refresh_token",
                "client_id": settings.oauth.client_id,
                "refresh_token": grant.refresh_token,
                "scope": found.scope,
            },
            settings.timeout,
        )
        if status == 200 and "error" not in data:
            return self._tokens(found.token_url, data, need_refresh_token=False)
        error = data.get("error")
        if error in {"invalid_grant", "interaction_required", "consent_required", "login_required"}:
            where = (
                f"the refresh token in {REFRESH_TOKEN_ENV} (unset or replace it)"
                if source == "env"
                else "the stored sign-in"
            )
            raise OAuthError(
                OAuthFailure.SIGN_IN_AGAIN,
                f"The server no longer accepts {where} for {settings.smtp.username} "
                f"({_describe_error(data, grant.refresh_token)}): it was revoked, expired "
                f"or the password changed; sign in again: {LOGIN_COMMAND}",
            )
        raise _error_from_answer(settings, found.token_url, status, data, grant.refresh_token)

    # --- storage (blocking) --------------------------------------------------------------

    def _probe_keyring(self, settings: Settings) -> None:
        """Raise ``NO_KEYRING`` when the sign-in could not be stored."""
        keyring = load_keyring()

        try:
            keyring.get_password(SERVICE, keyring_user(settings))
        except Exception as exc:  # NoKeyringError, locked collection, D-Bus, bad backend
            raise _no_keyring(exc) from None

    def _read_keyring(self, settings: Settings) -> _Grant | None:
        keyring = load_keyring()

        try:
            text = keyring.get_password(SERVICE, keyring_user(settings))
        except Exception as exc:
            raise _no_keyring(exc) from None
        return None if text is None else _Grant.loads(str(text))

    def _save(self, settings: Settings, grant: _Grant) -> None:
        keyring = load_keyring()

        try:
            keyring.set_password(SERVICE, keyring_user(settings), grant.dumps())
        except Exception as exc:
            raise _no_keyring(exc, grant.refresh_token) from None

    def _load(self, settings: Settings, found: Endpoints) -> tuple[_Grant, str]:
        """The grant to refresh with, and its source (``env`` or ``keyring``)."""
        from_env = os.environ.get(REFRESH_TOKEN_ENV)
        if from_env:
            return (
                _Grant(from_env, settings.oauth.client_id, found.token_url, "", None, None),
                "env",
            )
        grant = self._read_keyring(settings)
        if grant is None:
            raise OAuthError(
                OAuthFailure.NOT_SIGNED_IN,
                f"{settings.smtp.username} has not signed in with OAuth2 on this machine: "
                f"sign in first: {LOGIN_COMMAND}",
            )
        if grant.client_id != settings.oauth.client_id or grant.token_url != found.token_url:
            raise OAuthError(
                OAuthFailure.SIGN_IN_AGAIN,
                f"The stored sign-in for {settings.smtp.username} was made with another app "
                f"registration or provider (client id {grant.client_id or '?'}); the settings "
                f"changed since: sign in again: {LOGIN_COMMAND}",
            )
        return grant, "keyring"

    def status(self, settings: Settings) -> OAuthStatus:
        """What is stored for the settings' account (blocking: a keyring call)."""
        account = settings.smtp.username
        key = keyring_user(settings)
        cached = self._cache.get(key)
        expires = cached.tokens.expires_at if cached is not None else None
        if os.environ.get(REFRESH_TOKEN_ENV):
            return OAuthStatus(
                account=account,
                signed_in=True,
                source="env",
                description=(
                    f"signed in through the {REFRESH_TOKEN_ENV} environment variable "
                    "(used, never stored or updated)"
                ),
                client_id=settings.oauth.client_id,
                access_token_expires_at=expires,
            )
        try:
            grant = self._read_keyring(settings)
        except OAuthError:
            return OAuthStatus(
                account=account,
                signed_in=False,
                source="none",
                description=(
                    "not signed in: no keyring is available on this machine to keep the "
                    f"sign-in; see `{LOGIN_COMMAND}` for the alternatives"
                ),
            )
        if grant is None:
            return OAuthStatus(
                account=account,
                signed_in=False,
                source="none",
                description=f"not signed in on this machine: run {LOGIN_COMMAND}",
            )
        found = endpoints(settings)
        current = grant.client_id == settings.oauth.client_id and grant.token_url == found.token_url
        where = f"the system keyring (service {SERVICE!r}, user {key!r})"
        description = (
            f"signed in; the sign-in is kept in {where}"
            if current
            else f"a sign-in for another app registration or provider is kept in {where}; "
            f"the settings changed since: run {LOGIN_COMMAND}"
        )
        return OAuthStatus(
            account=account,
            signed_in=current,
            source="keyring",
            description=description,
            client_id=grant.client_id,
            scope=grant.scope,
            signed_in_at=grant.signed_in_at,
            refreshed_at=grant.refreshed_at,
            access_token_expires_at=expires if current else None,
        )

    def logout(self, settings: Settings) -> bool:
        """Forget the sign-in: the keyring entry and the access token in memory.

        This is local: the provider may keep the refresh token valid until it
        expires (Microsoft has no revocation endpoint for public clients; "sign
        out everywhere" in the account's security page revokes it).

        Returns:
            True when a keyring entry was removed.

        Raises:
            OAuthError: ``NO_KEYRING``.
        """
        keyring = load_keyring()
        from keyring.errors import PasswordDeleteError

        self.forget_access_token(settings)
        try:
            keyring.delete_password(SERVICE, keyring_user(settings))
        except PasswordDeleteError:
            return False
        except Exception as exc:
            raise _no_keyring(exc) from None
        logger.info("signed out %s", settings.smtp.username)
        return True


# --- error words ---------------------------------------------------------------------


def _seconds(value: Any) -> int | None:
    """An integer count of seconds; some servers send it as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in {"https", "http"} and bool(parts.hostname)


def _cancelled() -> OAuthError:
    return OAuthError(OAuthFailure.CANCELLED, "Sign-in cancelled: nothing was stored.")


def _expired(code: DeviceCode, *, pending: bool) -> OAuthError:
    minutes = max(round(code.expires_in / 60), 1)
    why = (
        f"nobody completed the sign-in within {minutes} minutes (the server kept answering "
        "authorization_pending)"
        if pending
        else f"it is valid for {minutes} minutes (expired_token)"
    )
    return OAuthError(
        OAuthFailure.EXPIRED,
        f"The code {code.user_code} expired before the sign-in was completed: {why}. "
        f"Start again: {LOGIN_COMMAND}",
    )


def _no_keyring(exc: BaseException, *secrets: str) -> OAuthError:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    for secret in secrets:
        detail = detail.replace(secret, "<redacted>") if secret else detail
    return OAuthError(
        OAuthFailure.NO_KEYRING,
        f"{NO_KEYRING_HELP}\n(keyring said: {type(exc).__name__}: {_clean(detail)})",
    )


def _network_error(exc: BaseException, host: str) -> OAuthError:
    link: BaseException | None = exc
    seen = 0
    while link is not None and seen < 10:
        if isinstance(link, ssl.SSLCertVerificationError):
            reason = _clean(link.verify_message or str(link), 200)
            return OAuthError(
                OAuthFailure.TLS,
                f"The certificate of the sign-in server {host} is not trusted ({reason}): "
                "a proxy or firewall may be intercepting HTTPS; nothing was sent",
            )
        if isinstance(link, ConnectionRefusedError):
            return OAuthError(
                OAuthFailure.UNREACHABLE,
                f"Cannot reach the sign-in server {host}: the connection was refused. Check "
                "the URL, and that this machine may make HTTPS connections out",
                retryable=True,
            )
        link = link.__cause__ or link.__context__
        seen += 1
    return OAuthError(
        OAuthFailure.UNREACHABLE,
        f"Cannot reach the sign-in server {host} ({type(exc).__name__}: "
        f"{_clean(str(exc), 200) or 'no detail'}). Check the network, a proxy "
        "(HTTPS_PROXY) or the firewall",
        retryable=True,
    )


def _aadsts(data: dict[str, Any]) -> set[int]:
    """Microsoft's AADSTS numbers from ``error_codes`` and the description."""
    codes: set[int] = set()
    raw = data.get("error_codes")
    if isinstance(raw, list):
        codes.update(c for c in raw if isinstance(c, int) and not isinstance(c, bool))
    description = data.get("error_description")
    if isinstance(description, str):
        codes.update(int(m) for m in re.findall(r"AADSTS(\d{1,9})", description))
    return codes


def _describe_error(data: dict[str, Any], *secrets: str) -> str:
    """``error: first line of the description``, cleaned, with no secret in it."""
    error = data.get("error")
    text = _clean(str(error), 80) if error is not None else "no error code"
    description = data.get("error_description")
    if isinstance(description, str) and description.strip():
        text += ": " + _clean(description.strip().splitlines()[0], 240)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "<redacted>")
    return text


def _error_from_answer(
    settings: Settings, url: str, status: int, data: dict[str, Any], *secrets: str
) -> OAuthError:
    """An error answer of the device or token endpoint, in plain words."""
    host = urlsplit(url).hostname or url
    error = data.get("error")
    codes = _aadsts(data)
    said = _describe_error(data, *secrets)
    client_id = settings.oauth.client_id
    if 7000218 in codes:
        return OAuthError(
            OAuthFailure.PUBLIC_CLIENT_DISABLED,
            "The app registration does not allow the device code sign-in: in the Entra admin "
            "center, App registrations → your app → Authentication → Advanced settings, set "
            f"'Allow public client flows' to Yes; then sign in again: {LOGIN_COMMAND} ({said})",
        )
    if codes & {90002, 900023}:
        return OAuthError(
            OAuthFailure.TENANT_NOT_FOUND,
            f"Microsoft does not know the tenant {settings.oauth.tenant!r}: check oauth.tenant "
            "(your Directory (tenant) ID, a domain of your organisation, or organizations) "
            f"({said})",
        )
    if 700016 in codes or error in {"invalid_client", "unauthorized_client"}:
        return OAuthError(
            OAuthFailure.UNKNOWN_CLIENT,
            f"The sign-in server {host} does not accept the client id {client_id!r}: check "
            "oauth.client_id (the Application (client) ID of your app registration) and that "
            f"the app exists in this tenant and allows public client flows ({said})",
        )
    if status >= 500 or error in {"server_error", "temporarily_unavailable"}:
        return OAuthError(
            OAuthFailure.SERVER_ERROR,
            f"The sign-in server {host} has trouble (HTTP {status}, {said}): try again later",
            retryable=True,
        )
    return OAuthError(
        OAuthFailure.SERVER_ERROR,
        f"The sign-in server {host} refused the request (HTTP {status}, {said})",
    )
