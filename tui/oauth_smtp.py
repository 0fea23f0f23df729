"""OAuth2 for every send path: the token source the SMTP transport is given.

The transports never import ``tui`` (the service lives here), so the callers
(the CLI's ``test`` and ``send``, batches, documents, the TUI) build a
``SmtpTokenSource`` with ``token_source(settings, service)`` and pass it down
to ``run_test`` / ``send_batch`` / ``resume_batch``. It turns every
``OAuthError`` into a ``SendFailure`` at the AUTH step (class
``OAUTH_SIGN_IN``), so a missing or revoked sign-in is reported, hinted and
logged like any other failure, and a network failure of the token server is
retryable like a lost connection.
"""

from __future__ import annotations

from transports.errors import FailureClass, SendFailure
from transports.events import Step
from transports.settings import AuthMethod, Protocol, Settings
from tui.oauth import OAuthError, OAuthFailure, OAuthService, TokenGenerator

__all__ = ["SmtpTokenSource", "sign_in_failure", "token_source", "uses_oauth"]

_TITLES = {
    OAuthFailure.NOT_SIGNED_IN: "Not signed in with OAuth2 on this machine",
    OAuthFailure.SIGN_IN_AGAIN: "The OAuth2 sign-in is no longer accepted",
    OAuthFailure.NOT_CONFIGURED: "OAuth2 is not set up",
    OAuthFailure.NO_KEYRING: "No keyring to keep the OAuth2 sign-in",
    OAuthFailure.UNREACHABLE: "The OAuth2 sign-in server could not be reached",
    OAuthFailure.TLS: "The OAuth2 sign-in server's certificate is not trusted",
    OAuthFailure.SERVER_ERROR: "The OAuth2 sign-in server has trouble",
}


def uses_oauth(settings: Settings) -> bool:
    """True when the settings log in with XOAUTH2 (SMTP, ``auth = "oauth2"``)."""
    return settings.protocol is Protocol.SMTP and settings.smtp.auth is AuthMethod.OAUTH2


def sign_in_failure(exc: OAuthError) -> SendFailure:
    """An ``OAuthError`` as the AUTH-step failure of a send (its words, never a token)."""
    return SendFailure(
        FailureClass.OAUTH_SIGN_IN,
        Step.AUTH,
        _TITLES.get(exc.kind, "No OAuth2 access token could be obtained"),
        detail=str(exc),
        retryable=exc.retryable,
    )


class SmtpTokenSource:
    """``transports.base.TokenSource`` over the service: failures are ``SendFailure``."""

    def __init__(self, generator: TokenGenerator) -> None:
        self._generator = generator

    async def __call__(self) -> str:
        try:
            return await self._generator()
        except OAuthError as exc:
            raise sign_in_failure(exc) from None

    async def refresh(self) -> str:
        try:
            return await self._generator.refresh()
        except OAuthError as exc:
            raise sign_in_failure(exc) from None

    def __repr__(self) -> str:
        return f"<SmtpTokenSource {self._generator!r}>"


def token_source(settings: Settings, service: OAuthService) -> SmtpTokenSource | None:
    """The token source for these settings, or None when they do not use OAuth2."""
    if not uses_oauth(settings):
        return None
    return SmtpTokenSource(service.token_generator(settings))
