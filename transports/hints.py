"""Troubleshooting hints: a table of data keyed by failure class and preset.

``with_hints`` returns the failure with its hints filled in: the hints of its
class, then the preset's own for that class, then the closing hint that is
always last (try the same settings in another mail client).
"""

from __future__ import annotations

import dataclasses

from transports.errors import FailureClass, SendFailure
from transports.presets import OFFICE365_FACTS, PRESETS
from transports.settings import AuthMethod, Settings

OAUTH_LOGIN_COMMAND = "smtpdesk oauth login"
"""The command that signs in again (the same words as ``tui.oauth.LOGIN_COMMAND``)."""

OAUTH2_AUTH_HINTS = (
    "The OAuth2 access token was not accepted (535), even a freshly refreshed one: sign "
    f"in again with '{OAUTH_LOGIN_COMMAND}' (the sign-in may have been revoked).",
    "Check that the app registration has the delegated permission SMTP.Send (Office 365 "
    "Exchange Online) with consent, that the username is the mailbox that signed in, "
    "and that SMTP AUTH is enabled for the mailbox.",
)
"""Replace the password hints of the AUTH classes when ``smtp.auth`` is ``oauth2``."""

_OAUTH2_REPLACES = {
    FailureClass.AUTH_FAILED,
    FailureClass.APP_PASSWORD_REQUIRED,
    FailureClass.BASIC_AUTH_DISABLED,
}

ALWAYS_LAST = (
    "Try the same settings in another mail client (for example Thunderbird) to tell "
    "a settings problem from a network one."
)

_DO_NOT_VERIFY = (
    "Only if this is your own server with a self-signed certificate and no CA file can "
    "be had: the 'Do not verify TLS certificate' option connects anyway. Never use it "
    "for Gmail, Yahoo or Office 365: their certificates are always valid, so an error "
    "there means the connection is being intercepted."
)
_CA_FILE_FIRST = (
    "The safe fix for your own server: put its certificate (or the CA that issued it) "
    "in a PEM file and enter that path as 'Trusted certificate file'."
)

HINTS: dict[FailureClass, tuple[str, ...]] = {
    FailureClass.DNS: (
        "The host name was not found in DNS: check its spelling (for example "
        "smtp.gmail.com, smtp.mail.yahoo.com, smtp.office365.com).",
        "If the name is right, check this machine's DNS and network (try "
        "'getent hosts <name>' or 'dig <name>').",
    ),
    FailureClass.REFUSED: (
        "Nothing accepted the connection on this port: check the port (465 for "
        "implicit TLS, 587 for STARTTLS, 25 only for relays).",
        "A firewall, antivirus or the hosting provider may be blocking outgoing SMTP; "
        "many block port 25 entirely.",
    ),
    FailureClass.UNREACHABLE: (
        "This machine has no route to the server: check the network, a VPN, or an "
        "outgoing firewall.",
        "Check the host name and port; many hosting providers block outgoing SMTP "
        "(port 25 above all).",
    ),
    FailureClass.CONNECT_TIMEOUT: (
        "The server did not answer the connection: a wrong port, or a firewall / "
        "hosting provider silently dropping outgoing SMTP (port 25 often is).",
        "Try port 587 (STARTTLS) or 465 (implicit TLS) if the provider offers them.",
    ),
    FailureClass.GREETING_TIMEOUT: (
        "The connection opened but the server never said hello. Port 465 expects TLS "
        "at once (security 'tls'); 587 expects STARTTLS: check port and security match.",
        "A firewall or antivirus that intercepts SMTP can also swallow the greeting.",
    ),
    FailureClass.TLS_WRONG_VERSION: (
        "The port and security mode do not match: this port speaks plain SMTP first, "
        "but implicit TLS was used. Port 587 (and 25) expect STARTTLS; port 465 "
        "expects TLS at once.",
        "Choose security 'starttls' for this port, or use port 465 with 'tls'.",
    ),
    FailureClass.TLS_EXPECTED: (
        "Port 465 expects TLS at once (implicit TLS) and waits silently for a TLS "
        "handshake: choose security 'tls' for port 465, or use port 587 with STARTTLS.",
    ),
    FailureClass.TLS_HANDSHAKE: (
        "The TLS handshake failed: check that the port and security mode match "
        "(465 → tls, 587 → starttls).",
        "Something between here and the server (an antivirus, a proxy) may be "
        "interfering with TLS.",
    ),
    FailureClass.TLS_OUTDATED: (
        "The server's TLS is outdated (an old protocol version, or a Diffie-Hellman "
        "key that is too small): it has to be upgraded by whoever runs it.",
        "Modern clients refuse such connections on purpose; lowering security here is not the fix.",
    ),
    FailureClass.CERT_SELF_SIGNED: (
        "The server presents a self-signed certificate, which no one vouches for.",
        _CA_FILE_FIRST,
        _DO_NOT_VERIFY,
    ),
    FailureClass.CERT_UNTRUSTED: (
        "The server's certificate is issued by a certificate authority this machine "
        "does not trust (a private or company CA, or an intercepting proxy).",
        "If it is your organisation's CA, enter its PEM file as 'Trusted certificate "
        "file'. The system CA bundle may also be outdated (update ca-certificates).",
        _DO_NOT_VERIFY,
    ),
    FailureClass.CERT_HOSTNAME: (
        "The certificate is valid but for another host name: use the exact host name "
        "the certificate names (often the provider's documented name, not an alias or "
        "an IP address).",
        "A mismatch on a well-known provider can mean the connection is intercepted.",
    ),
    FailureClass.CERT_EXPIRED: (
        "The server's certificate has expired (or this machine's clock is wrong: "
        "check the date with 'date').",
        "The server's administrator has to renew the certificate.",
        _DO_NOT_VERIFY,
    ),
    FailureClass.CERT_INVALID: (
        "The server's certificate could not be accepted: the detail says why.",
        "Check this machine's clock; for your own server, see 'Trusted certificate file'.",
    ),
    FailureClass.CA_FILE: (
        "The 'Trusted certificate file' cannot be read or is not a PEM certificate: "
        "check the path and that it contains '-----BEGIN CERTIFICATE-----'.",
        "Leave the field empty to trust the system's certificate authorities only.",
    ),
    FailureClass.STARTTLS_NOT_OFFERED: (
        "The server did not offer STARTTLS, so the session would stay unencrypted: "
        "smtpdesk refuses to send the password in clear text and stopped before AUTH.",
        "Check the port (587 normally offers STARTTLS; 465 uses implicit TLS: choose "
        "security 'tls'). Something on the path may also strip STARTTLS.",
        "Choose security 'none' only for an internal relay you trust, without a password.",
    ),
    FailureClass.STARTTLS_REFUSED: (
        "The server refused to start TLS (454 means TLS is unavailable for now): try "
        "again later, or ask the server's administrator.",
    ),
    FailureClass.ENCRYPTION_REQUIRED: (
        "The server requires encryption before anything else: choose security "
        "'starttls' (port 587) or 'tls' (port 465).",
    ),
    FailureClass.GREETING_REJECTED: (
        "The server refused this client as soon as it connected (554): this machine's "
        "IP address may be on a block list, or the server only accepts known hosts.",
        "Check the server's reply text; the provider's documentation usually explains it.",
    ),
    FailureClass.AUTH_NOT_OFFERED: (
        "The server does not offer authentication here. Many servers offer AUTH only "
        "after STARTTLS: choose security 'starttls' or 'tls'.",
        "If this is an internal relay that trusts this host, leave the username empty.",
    ),
    FailureClass.AUTH_NO_COMMON_MECHANISM: (
        "The server offers no authentication mechanism smtpdesk speaks (PLAIN, LOGIN, "
        "CRAM-MD5). A server that offers only XOAUTH2 needs an OAuth sign-in.",
    ),
    FailureClass.AUTH_FAILED: (
        "The username or password was not accepted (535): check both. The username "
        "is usually the full email address.",
        "Many providers need an app password instead of the account password when "
        "two-step verification is on.",
    ),
    FailureClass.AUTH_REQUIRED: (
        "The server requires authentication (530): enter the username and password of the mailbox.",
    ),
    FailureClass.APP_PASSWORD_REQUIRED: (
        "The server wants an app password (an application-specific password), not the "
        "account password: create one in the account's security settings.",
    ),
    FailureClass.WEB_LOGIN_REQUIRED: (
        "The provider blocked this sign-in until the account is used in a web browser "
        "(534 5.7.14): sign in to the account in a browser, confirm any security alert "
        "('Was this you?'), then test again.",
        "For Gmail use an app password (2-Step Verification on): the account password "
        "is refused for SMTP.",
    ),
    FailureClass.SMTP_AUTH_DISABLED: (
        "SMTP AUTH is turned off for this mailbox or the whole tenant: an administrator "
        "must enable 'Authenticated SMTP' for the mailbox.",
    ),
    FailureClass.BASIC_AUTH_DISABLED: (
        "The server no longer accepts a username and password for SMTP (basic "
        "authentication is off): OAuth2 is needed, and app passwords do not help.",
    ),
    FailureClass.SENDER_REJECTED: (
        "The server rejected the sender address (550/553): the From address must be "
        "one this login may send as, usually the login's own address.",
        "Check 'Email address (From)'; some servers also reject senders on domains they "
        "do not host.",
    ),
    FailureClass.SEND_AS_DENIED: (
        "This login is not allowed to send as the From address: use the mailbox's own "
        "address, or have an administrator grant 'Send As' for the other one.",
    ),
    FailureClass.RECIPIENT_REJECTED: (
        "The server rejected the recipient (550): check the address for typos; the "
        "reply text says whether it does not exist or relaying is refused.",
        "'Relay access denied' means the server wants you to log in first (username and password).",
    ),
    FailureClass.MESSAGE_TOO_BIG: (
        "The message is larger than the server accepts (552): compare its size with "
        "the SIZE limit the server announced in its EHLO reply.",
        "Send fewer or smaller attachments per message; attachments grow by about a "
        "third when encoded.",
    ),
    FailureClass.MESSAGE_REJECTED: (
        "The server refused the message after receiving it: the reply text says why "
        "(content policy, spam filter, missing headers).",
    ),
    FailureClass.SMTPUTF8_NOT_OFFERED: (
        "An address has non-ASCII characters before the @, which needs the server's "
        "SMTPUTF8 extension, and this server does not offer it: use an ASCII address.",
    ),
    FailureClass.TEMPORARY: (
        "A temporary failure (421 / 4xx): the server is busy, rate-limiting, or "
        "greylisting. Try again in a few minutes; batches retry these by themselves.",
    ),
    FailureClass.DISCONNECTED: (
        "The server closed the connection unexpectedly: it may be overloaded, or it "
        "dropped this client (size, rate or policy). Try again later.",
        "Check the port and security mode match if it happens at once.",
    ),
    FailureClass.TIMEOUT: (
        "The server stopped answering during this step: try again later, or raise the "
        "timeout for slow servers and large attachments.",
    ),
    FailureClass.PROTOCOL: (
        "The server answered something that is not SMTP as expected: check that host "
        "and port point at a mail server (not a web or IMAP server).",
    ),
    FailureClass.PASSWORD_MISSING: (
        "A username is set but no password was found: store it with 'smtpdesk password "
        "set', set SMTPDESK_PASSWORD, or configure password_command.",
        "Leave the username empty if this server needs no login.",
    ),
    FailureClass.OAUTH_SIGN_IN: (
        f"OAuth2 needs a sign-in on this machine: run '{OAUTH_LOGIN_COMMAND}' (or "
        "'Sign in' in the settings form) and open the page it shows on any device.",
        "When the sign-in server could not be reached, check this machine's network and "
        "proxy; the sign-in itself stays valid.",
    ),
    FailureClass.HTTP_UNAUTHORIZED: (
        "The relay refused the key (401/403): check the key in the Password field, and "
        "that it is allowed to send for this address.",
    ),
    FailureClass.HTTP_NOT_FOUND: (
        "The relay URL was not found (404): check the path of the HTTP server URL.",
    ),
    FailureClass.HTTP_TOO_LARGE: (
        "The relay refused the message as too large (413): send smaller attachments.",
    ),
    FailureClass.HTTP_RATE_LIMITED: (
        "The relay is rate-limiting (429): wait and try again (Retry-After says how long).",
    ),
    FailureClass.HTTP_SERVER_ERROR: (
        "The relay had an internal problem (5xx): try again later, or ask whoever runs it.",
    ),
    FailureClass.HTTP_CLIENT_ERROR: (
        "The relay refused the request (4xx): its reply says why; check the URL and key.",
    ),
    FailureClass.HTTP_REDIRECT: (
        "The relay answered with a redirect, which smtpdesk does not follow (the key "
        "must never go to another host): enter the final URL.",
    ),
    FailureClass.HTTP_BAD_RESPONSE: (
        "The relay's answer was not understood: check that the URL points at a relay "
        "that implements smtpdesk's HTTP contract (see the README).",
    ),
    FailureClass.CANCELLED: ("The test was cancelled; nothing more was sent.",),
    FailureClass.UNEXPECTED: (
        "An unexpected error: the detail says what happened. Please report it with the "
        "transcript (it never contains the password).",
    ),
}
"""General hints per failure class: every class has an entry."""


def _guidance_steps(preset: str) -> str:
    """A preset's guidance text as one hint (the wording lives in ``PRESETS``)."""
    return PRESETS[preset].guidance


PRESET_HINTS: dict[tuple[FailureClass, str], tuple[str, ...]] = {
    **{
        (failure_class, preset): (_guidance_steps(preset),)
        for preset in ("gmail", "yahoo", "icloud", "fastmail", "aol")
        for failure_class in (
            FailureClass.AUTH_FAILED,
            FailureClass.APP_PASSWORD_REQUIRED,
            FailureClass.WEB_LOGIN_REQUIRED,
        )
    },
    **{
        (failure_class, "office365"): (
            "Office 365: SMTP AUTH must be enabled for the mailbox (Microsoft 365 admin "
            "center → Users → the user → Mail → Manage email apps → Authenticated SMTP).",
            OFFICE365_FACTS,
        )
        for failure_class in (
            FailureClass.AUTH_FAILED,
            FailureClass.SMTP_AUTH_DISABLED,
            FailureClass.BASIC_AUTH_DISABLED,
        )
    },
    (FailureClass.SEND_AS_DENIED, "office365"): (
        "Office 365: the From address must be the mailbox's own address or one it has "
        "'Send As' permission for ('554 5.2.252 SendAsDenied' otherwise).",
    ),
    **{
        (failure_class, "outlook"): (_guidance_steps("outlook"),)
        for failure_class in (
            FailureClass.AUTH_FAILED,
            FailureClass.BASIC_AUTH_DISABLED,
            FailureClass.SMTP_AUTH_DISABLED,
        )
    },
    (FailureClass.AUTH_FAILED, "sandbox"): (
        "The sandbox's login is demo@smtpdesk.test with the password 'sandbox-pass'.",
    ),
}
"""Extra hints for one class at one preset, shown before the general ones."""


def hints_for(failure_class: FailureClass, preset: str) -> tuple[str, ...]:
    """The hints for a class at a preset, the closing hint last."""
    found = [*PRESET_HINTS.get((failure_class, preset), ()), *HINTS.get(failure_class, ())]
    if failure_class is not FailureClass.CANCELLED:
        found.append(ALWAYS_LAST)
    return tuple(dict.fromkeys(found))


def with_hints(failure: SendFailure, settings: Settings) -> SendFailure:
    """The failure with the hints for its class and the settings' preset.

    With OAuth2 (``smtp.auth = "oauth2"``) a refused login gets the OAuth2
    hints (sign in again) instead of the password ones.
    """
    if settings.smtp.auth is AuthMethod.OAUTH2 and failure.failure_class in _OAUTH2_REPLACES:
        return dataclasses.replace(failure, hints=(*OAUTH2_AUTH_HINTS, ALWAYS_LAST))
    hints = hints_for(failure.failure_class, settings.preset)
    smtp = settings.smtp
    if failure.failure_class in _TRUST_FAILURES and smtp.verify_tls and smtp.ca_file:
        hints = (_ONLY_CA_FILE.format(ca_file=smtp.ca_file), *hints)
    return dataclasses.replace(failure, hints=hints)


_TRUST_FAILURES = frozenset({FailureClass.CERT_UNTRUSTED, FailureClass.CERT_SELF_SIGNED})
_ONLY_CA_FILE = (
    "While 'Trusted certificate file' is set, it is the only trust for this server: "
    "{ca_file} must hold the server's certificate or the CA that issued it. Clear the "
    "field to trust the system CAs instead (a public provider needs nothing there)."
)
