"""The settings screen: the form, presets and guidance, the live test send, and save.

Every field of DESIGN.md section 1 is composed once; what is shown follows the
current values (``_refresh``), by toggling ``display`` — never by recomposing,
which would reset the Inputs. Hidden fields leave the tab order.

Validation has one source of truth: the form values are turned into a
``Settings`` model (``_collect``) and each ``(field, message)`` pair from
``field_errors`` is shown under its field. A field shows its error once the
user has typed in it or left it; Test and Save show them all.

The test send runs the engine (``transports.testsend.run_test``, injectable for
tests) in an exclusive async worker and appends each transcript event to a
``Log`` (which never parses markup: server text is shown literally). Blocking
calls (keyring, writing the settings file, the verified record) run in thread
workers.

OAuth2 (``smtp.auth = "oauth2"``): the Authentication choice swaps the password
field for the ``[oauth]`` fields, a "Sign in…" button (``OAuthSignInScreen``)
and a one-line sign-in status (``OAuthService.status`` in a thread worker). The
test send then gets ``tui.oauth_smtp.token_source(settings, service)`` and no
password is looked up.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Log, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from screens.widgets import FieldError, HintsPanel, Notice, PasswordInput
from transports.addresses import looks_like_address
from transports.presets import PRESETS, preset_for
from transports.settings import (
    STRICT_TLS_PRESETS,
    AuthMethod,
    OAuthProvider,
    Security,
    Settings,
    field_errors,
    security_for_port,
)
from transports.settings import (
    Protocol as MailProtocol,
)
from tui.store import SettingsStore, StoreError
from tui.terminal import neutralise

if TYPE_CHECKING:
    # Imported where used (sign-in, status, test send): tui.oauth imports httpx, the
    # engine the message builder; neither is needed for the first paint of the form.
    # So are the dialogs, the keyring access (tui.secrets) and the record of the last
    # successful test (tui.verified): only a test send or Save needs them.
    from transports.base import TokenSource
    from transports.events import EventSink, TranscriptEvent
    from transports.testsend import TestOutcome
    from tui.oauth import OAuthService, OAuthStatus


class RunTest(Protocol):
    """The engine's test send (``transports.testsend.run_test``), injectable for tests."""

    def __call__(
        self,
        settings: Settings,
        secret: str | None,
        *,
        on_event: EventSink,
        to: str | None = None,
        token_source: TokenSource | None = None,
    ) -> Awaitable[TestOutcome]: ...


@dataclass
class ScreenServices:
    """What the settings screen talks to, chosen by ``tui.app.make_app``."""

    store: SettingsStore
    """Where the settings are loaded from and saved to."""
    run_test: RunTest
    """The test send."""
    demo: bool = False
    """Demo mode: a temporary config; the password is not stored; nothing global is recorded."""
    cursor_blink: bool = True
    """Off for snapshot tests."""
    oauth: OAuthService | None = None
    """The app's one OAuth2 service (sign-in, status, access tokens); made on first use
    when None (``get_oauth``)."""
    _oauth_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def get_oauth(self) -> OAuthService:
        """The OAuth2 service, made (and ``tui.oauth`` imported) on first use.

        Safe from a thread worker (the sign-in status is asked in one): one service only.
        """
        with self._oauth_lock:
            if self.oauth is None:
                from tui.oauth import OAuthService

                self.oauth = OAuthService()
            return self.oauth


HTTP_GUIDANCE = (
    "HTTP relay: each message is POSTed as JSON to the URL (an https:// address; "
    "plain http:// only to this machine).\n"
    'Body: {"envelope": {"from": ..., "to": [...]}, "message": <the RFC 5322 '
    "message, base64>}. The relay key, when one is needed, goes in the Password field "
    "and is sent as 'Authorization: Bearer <key>'.\n"
    "Replies to mail sent through a relay go to the Reply address, which is required."
)

PORT_25_WARNING = (
    "Port 25 is for relays between servers: it may not be encrypted and many "
    "hosting providers block it. 465 and 587 are encrypted."
)
NO_SECURITY_WARNING = (
    "No encryption: only for an internal relay on a trusted network. Mail, and any "
    "password, would travel in clear text."
)
NO_VERIFY_WARNING = (
    "Not verifying the certificate is only for your own server with a self-signed "
    "certificate: anyone on the path could read the mail and the password. Prefer "
    "'Trusted certificate file' under Advanced."
)
PLAIN_HTTP_WARNING = "Plain http:// is not encrypted: allowed to this machine only."

MICROSOFT_OAUTH_GUIDE = (
    "https://learn.microsoft.com/exchange/client-developer/legacy-protocols/"
    "how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth"
)
# Shown (never forced) when a Microsoft preset is chosen with password authentication.
OAUTH_SUGGESTIONS: dict[str, str] = {
    "office365": (
        "Consider Authentication: OAuth2 sign-in. Microsoft turns basic authentication "
        "for SMTP AUTH off by default for existing tenants at the end of December 2026 "
        "(new tenants have none). Steps in the guidance panel and at " + MICROSOFT_OAUTH_GUIDE
    ),
    "outlook": (
        "Outlook.com personal accounts have had no basic authentication since September "
        "2024: choose Authentication: OAuth2 sign-in (Tenant: consumers). Steps in the "
        "guidance panel and at " + MICROSOFT_OAUTH_GUIDE
    ),
}

# settings field (dotted) -> the widget id that edits it
FIELD_WIDGETS: dict[str, str] = {
    "preset": "preset",
    "protocol": "protocol",
    "http.url": "http-url",
    "reply_to": "reply-to",
    "smtp.host": "smtp-host",
    "smtp.port": "smtp-port",
    "smtp.security": "smtp-security",
    "smtp.username": "smtp-username",
    "smtp.from_address": "smtp-from-address",
    "from_name": "from-name",
    "copy_to": "copy-to",
    "smtp.verify_tls": "no-verify",
    "smtp.ca_file": "smtp-ca-file",
    "timeout": "timeout",
    "smtp.auth": "smtp-auth",
    "oauth.provider": "oauth-provider",
    "oauth.tenant": "oauth-tenant",
    "oauth.client_id": "oauth-client-id",
    "oauth.device_authorization_url": "oauth-device-url",
    "oauth.token_url": "oauth-token-url",
    "oauth.scope": "oauth-scope",
}
# The generic provider's endpoints and scope: shown under "advanced".
GENERIC_OAUTH_WIDGETS = ("oauth-device-url", "oauth-token-url", "oauth-scope")
WIDGET_FIELDS = {widget: name for name, widget in FIELD_WIDGETS.items()}

SECURITY_OPTIONS: list[tuple[str, Security]] = [
    ("STARTTLS (required)", Security.STARTTLS),
    ("Implicit TLS", Security.TLS),
    ("None: no encryption", Security.NONE),
]

AUTH_OPTIONS: list[tuple[str, AuthMethod]] = [
    ("Password", AuthMethod.PASSWORD),
    ("OAuth2 sign-in (Office 365 / Outlook)", AuthMethod.OAUTH2),
]

PROVIDER_OPTIONS: list[tuple[str, OAuthProvider]] = [
    ("Microsoft (Entra ID)", OAuthProvider.MICROSOFT),
    ("Generic (URLs and scope under advanced)", OAuthProvider.GENERIC),
]


def _utc(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def oauth_status_text(status: OAuthStatus) -> str:
    """The one-line sign-in status under the Sign in button (never a token)."""
    if status.signed_in:
        text = f"Signed in as {status.account}"
        if status.access_token_expires_at is not None:
            return text + f" (token valid until {_utc(status.access_token_expires_at)})"
        if status.source == "env":
            return text + " (SMTPDESK_OAUTH_REFRESH_TOKEN)"
        return text + " (kept in the system keyring)"
    if status.source == "keyring":
        return "Not signed in with these settings (the stored sign-in is for another app)"
    if "no keyring" in status.description:
        return "Not signed in: no keyring on this machine to keep the sign-in"
    return "Not signed in on this machine"


def _digest(password: str) -> str:
    import hashlib

    return hashlib.sha256(password.encode("utf-8")).hexdigest()


_W = TypeVar("_W", bound=Widget)


def _show(widget: Widget, shown: bool) -> None:
    """Show or hide ``widget``: only on a change (each set re-lays out the whole screen)."""
    if widget.display != shown:
        widget.display = shown


class FormPane(VerticalScroll):
    """The scrolling form column; not a tab stop itself (its fields are)."""

    can_focus = False


class SidePane(VerticalScroll):
    """Guidance, transcript and hints: beside the form when wide, below it when narrow."""

    can_focus = False


class Body(ScrollableContainer):
    """Holds both panes; scrolls as a whole on narrow terminals."""

    can_focus = False


class SettingsScreen(Screen[None]):
    """The screen a sysadmin lives in: settings, presets, test send, save."""

    BINDING_GROUP_TITLE: str | None = "Settings"
    DEFAULT_CSS: ClassVar[str] = """
    SettingsScreen #oauth-sign-in-row {
        height: auto;
        margin-bottom: 1;
    }
    SettingsScreen #oauth-sign-in {
        min-width: 12;
    }
    SettingsScreen #oauth-status {
        width: 1fr;
        padding: 0 1;
    }
    SettingsScreen #oauth-status.-signed-in {
        color: $text-success;
    }
    """
    # Textual declares this without ClassVar; mypy then refuses a ClassVar override.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "test", "Test", id="test", tooltip="Send a test message"),
        Binding("ctrl+s", "save", "Save", id="save", tooltip="Save the settings (Update)"),
        Binding(
            "ctrl+r",
            "toggle_password",
            "Show/hide password",
            id="toggle-password",
            tooltip="Reveal or mask the password",
        ),
        Binding(
            "escape",
            "cancel_test",
            "Cancel test",
            id="cancel-test",
            priority=True,
            tooltip="Stop the test send at once",
        ),
    ]

    sending: reactive[bool] = reactive(False, bindings=True)
    """True while a test send runs (shows Cancel in the footer)."""

    def __init__(self, services: ScreenServices, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.touched: set[str] = set()
        """Fields whose errors are shown (typed in, left, or after Test/Save)."""
        self.errors: dict[str, str] = {}
        """Current validation errors by dotted field."""
        self.load_error: str = ""
        """Why the settings file could not be read ('' when it was fine)."""
        self.overwrite_confirmed = False
        """The user agreed to replace an unreadable settings file."""
        self.last_recipient: str = ""
        """The test recipient used last, offered again (this session only)."""
        self.last_outcome: TestOutcome | None = None
        self._base: Settings = Settings.unconfigured()
        self._tested: tuple[Settings, str] | None = None
        self._demo_settings: Settings | None = None
        self._refusal = ""
        self._seen: dict[str, object] = {}
        self._mounted = False
        self._pending_demo: tuple[Settings, str] | None = None
        self._status_key: tuple[str, ...] | None = None
        """What the OAuth2 status line was asked for (None: nothing asked yet)."""
        self._nodes_by_id: dict[str, Widget] = {}
        self._nodes_by_class: dict[str, tuple[Widget, ...]] = {}
        self._indexed = False
        self.oauth_status: OAuthStatus | None = None
        """The sign-in status shown, once the service answered."""

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # The breakpoint class (-narrow / -wide) set before the children exist. Textual's
        # Resize reaches the screen only once they are mounted: the first frames were
        # painted without it, then the whole form was restyled and laid out again (~25 ms).
        self._set_breakpoint_class(self.app.size.width)
        yield Header(show_clock=False, icon="@")
        with Body(id="body"):
            with FormPane(id="form-pane"):
                yield Notice(id="load-error")
                yield from self._field(
                    "preset",
                    "Provider preset",
                    Select(
                        [(preset.label, key) for key, preset in PRESETS.items()],
                        allow_blank=False,
                        value="custom",
                        id="preset",
                        compact=True,
                    ),
                )
                yield from self._field(
                    "protocol",
                    "Protocol",
                    Select(
                        [("SMTP server", MailProtocol.SMTP), ("HTTP relay", MailProtocol.HTTP)],
                        allow_blank=False,
                        value=MailProtocol.SMTP,
                        id="protocol",
                        compact=True,
                    ),
                )
                yield from self._field(
                    "http-url",
                    "HTTP server URL",
                    Input(placeholder="https://relay.example/send", id="http-url", compact=True),
                    classes="http",
                )
                yield Notice(id="http-warning")
                yield from self._field(
                    "smtp-host",
                    "Host name",
                    Input(
                        placeholder="smtp.gmail.com, smtp.mail.yahoo.com, smtp.office365.com",
                        id="smtp-host",
                        compact=True,
                    ),
                    classes="smtp",
                )
                with Horizontal(id="port-row", classes="smtp row"):
                    yield from self._field(
                        "smtp-port",
                        "Port (465, 587, 25)",
                        Input("587", type="integer", max_length=5, id="smtp-port", compact=True),
                    )
                    yield from self._field(
                        "smtp-security",
                        "Security",
                        Select(
                            SECURITY_OPTIONS,
                            allow_blank=False,
                            value=Security.STARTTLS,
                            id="smtp-security",
                            compact=True,
                        ),
                    )
                yield Notice(id="security-warning")
                yield from self._field(
                    "smtp-username",
                    "Username (empty: no login)",
                    Input(
                        placeholder="usually the full email address",
                        id="smtp-username",
                        compact=True,
                    ),
                    classes="smtp",
                )
                yield from self._field(
                    "smtp-from-address",
                    "Email address (From)",
                    Input(placeholder="billing@acme.example", id="smtp-from-address", compact=True),
                    classes="smtp",
                )
                yield from self._field(
                    "smtp-auth",
                    "Authentication",
                    Select(
                        AUTH_OPTIONS,
                        allow_blank=False,
                        value=AuthMethod.PASSWORD,
                        id="smtp-auth",
                        compact=True,
                    ),
                    classes="smtp",
                )
                yield Notice(id="auth-notice")
                yield from self._field(
                    "oauth-provider",
                    "OAuth2 provider",
                    Select(
                        PROVIDER_OPTIONS,
                        allow_blank=False,
                        value=OAuthProvider.MICROSOFT,
                        id="oauth-provider",
                        compact=True,
                    ),
                    classes="oauth",
                )
                yield from self._field(
                    "oauth-tenant",
                    "Tenant (tenant id, domain, organizations or consumers)",
                    Input("organizations", id="oauth-tenant", compact=True),
                    classes="oauth",
                )
                yield from self._field(
                    "oauth-client-id",
                    "Application (client) ID of your app registration",
                    Input(
                        placeholder="00000000-0000-0000-0000-000000000000",
                        id="oauth-client-id",
                        compact=True,
                    ),
                    classes="oauth",
                )
                with Horizontal(id="oauth-sign-in-row", classes="oauth row"):
                    yield Button("Sign in…", id="oauth-sign-in", compact=True)
                    yield Static("", id="oauth-status", markup=False)
                with Vertical(id="f-password", classes="field"):
                    yield Label("Password", id="password-label", classes="field-label")
                    with Horizontal(classes="row"):
                        yield PasswordInput(
                            placeholder="never written to a file", id="password", compact=True
                        )
                        yield Button("Show", id="password-toggle", compact=True)
                yield from self._field(
                    "from-name",
                    "Sender name (optional)",
                    Input(placeholder="ACME Ltd", id="from-name", compact=True),
                )
                yield Checkbox(
                    "Send a copy of all emails to this address", id="copy-enabled", compact=True
                )
                yield from self._field(
                    "copy-to",
                    "Copy address (blind copy, never shown to the customer)",
                    Input(placeholder="archive@acme.example", id="copy-to", compact=True),
                )
                yield Checkbox(
                    "Receive replies at a different address",
                    id="reply-enabled",
                    classes="smtp",
                    compact=True,
                )
                yield from self._field(
                    "reply-to",
                    "Reply-To address",
                    Input(placeholder="billing@acme.example", id="reply-to", compact=True),
                )
                yield Checkbox(
                    "Do not verify TLS certificate", id="no-verify", classes="smtp", compact=True
                )
                yield FieldError("smtp.verify_tls", id="err-no-verify")
                yield Notice(id="verify-warning")
                yield Checkbox("Show advanced settings", id="advanced", compact=True)
                yield from self._field(
                    "smtp-ca-file",
                    "Trusted certificate file (PEM; for a self-signed server)",
                    Input(placeholder="/etc/ssl/mail-server.pem", id="smtp-ca-file", compact=True),
                    classes="smtp advanced",
                )
                yield from self._field(
                    "timeout",
                    "Timeout per step (seconds)",
                    Input("20", type="number", id="timeout", compact=True),
                    classes="advanced",
                )
                yield from self._field(
                    "oauth-device-url",
                    "OAuth2 device authorization URL (generic provider)",
                    Input(
                        placeholder="https://login.example/oauth2/device",
                        id="oauth-device-url",
                        compact=True,
                    ),
                )
                yield from self._field(
                    "oauth-token-url",
                    "OAuth2 token URL (generic provider)",
                    Input(
                        placeholder="https://login.example/oauth2/token",
                        id="oauth-token-url",
                        compact=True,
                    ),
                )
                yield from self._field(
                    "oauth-scope",
                    "OAuth2 scope (generic provider; space-separated, with offline access)",
                    Input(
                        placeholder="https://outlook.office.com/SMTP.Send offline_access",
                        id="oauth-scope",
                        compact=True,
                    ),
                )
                yield Notice(id="form-errors")
                with Horizontal(id="actions"):
                    yield Button("Test email settings", variant="primary", id="test-button")
                    yield Button("Save", variant="success", id="save-button")
                yield Notice(id="status")
            with SidePane(id="side-pane"):
                yield Static("", markup=False, id="guidance")
                yield Notice(id="test-status")
                yield Log(id="transcript", max_lines=2000)
                with VerticalScroll(id="hints-box"):
                    yield HintsPanel(id="hints")
        yield Footer(compact=True)

    def _set_breakpoint_class(self, width: int) -> None:
        """Set ``-narrow`` / ``-wide`` for ``width`` as Textual's Resize handler does."""
        chosen = next(
            (
                name
                for lower, name in sorted(self.HORIZONTAL_BREAKPOINTS, reverse=True)
                if width >= lower
            ),
            None,
        )
        self.update_classes({name: name == chosen for _, name in self.HORIZONTAL_BREAKPOINTS})

    def _field(
        self, widget_id: str, label: str, widget: Widget, classes: str = ""
    ) -> Iterator[Widget]:
        """A labelled field with its error line, in one container that can be hidden."""
        container = Vertical(
            Label(label, id=f"{widget_id}-label", classes="field-label"),
            widget,
            FieldError(WIDGET_FIELDS.get(widget_id, widget_id), id=f"err-{widget_id}"),
            id=f"f-{widget_id}",
            classes=f"field {classes}".strip(),
        )
        yield container

    def on_mount(self) -> None:
        self.title = "smtpdesk"
        self.sub_title = "outgoing email settings" + (" (demo)" if self.services.demo else "")
        if not self.services.cursor_blink:
            for input_widget in self.query(Input):
                input_widget.cursor_blink = False
        self._node("transcript", Log).border_title = "Test transcript"
        self._node("hints-box", Widget).border_title = "Troubleshooting"
        self._node("hints-box", Widget).display = False
        self.load()
        self._mounted = True
        if self._pending_demo is not None:
            self.apply_demo(*self._pending_demo)
        self._node("preset", Select).focus()

    @property
    def ready(self) -> bool:
        """True once the form is composed and the settings file has been loaded."""
        return self._mounted

    # ------------------------------------------------------------------ values

    # The form is composed once and never recomposed: its widgets are looked up once.
    # (A CSS query walks and matches the whole screen; ``_refresh`` runs per keystroke.)

    def _index(self) -> None:
        """Index the composed screen in one breadth-first walk: widgets by id (the first
        found, as ``query_one``), by CSS class, the error lines and the form's values.

        A CSS query per lookup walked and matched the whole screen each time (~5 ms of
        the first paint); later lookups that miss still query, once.
        """
        self._indexed = True
        by_class: dict[str, list[Widget]] = {}
        errors: list[Widget] = []
        for widget in self.walk_children(Widget, method="breadth"):
            if widget.id is not None:
                self._nodes_by_id.setdefault(widget.id, widget)
            for css_class in widget.classes:
                by_class.setdefault(css_class, []).append(widget)
            if isinstance(widget, FieldError):
                errors.append(widget)
        self._nodes_by_class.update((name, tuple(found)) for name, found in by_class.items())
        self._nodes_by_class.setdefault("FieldError", tuple(errors))
        form_pane = self._nodes_by_id.get("form-pane")
        if form_pane is not None:
            values = [
                node
                for node in form_pane.walk_children(Widget)
                if isinstance(node, Input | Select | Checkbox)
            ]
            self._nodes_by_class.setdefault("form-values", tuple(values))

    def _node(self, widget_id: str, kind: type[_W]) -> _W:
        """The widget with this id (looked up once, then cached)."""
        if not self._indexed:
            self._index()
        node = self._nodes_by_id.get(widget_id)
        if node is None:
            node = self._nodes_by_id[widget_id] = self.query_one(f"#{widget_id}")
        assert isinstance(node, kind)
        return node

    def _classed(self, css_class: str) -> tuple[Widget, ...]:
        """The widgets with this CSS class (looked up once, then cached)."""
        if not self._indexed:
            self._index()
        found = self._nodes_by_class.get(css_class)
        if found is None:
            found = self._nodes_by_class[css_class] = tuple(self.query(f".{css_class}"))
        return found

    def _input(self, widget_id: str) -> Input:
        return self._node(widget_id, Input)

    def _checked(self, widget_id: str) -> bool:
        return self._node(widget_id, Checkbox).value

    def _select_value(self, widget_id: str) -> Any:
        return self._node(widget_id, Select).value

    @property
    def protocol(self) -> MailProtocol:
        """The protocol chosen in the form."""
        return MailProtocol(self._select_value("protocol"))

    @property
    def preset_key(self) -> str:
        """The preset shown in the picker."""
        return str(self._select_value("preset"))

    @property
    def password(self) -> str:
        """The password typed into the form ('' when none)."""
        return self._input("password").value

    @property
    def auth_method(self) -> AuthMethod:
        """The Authentication choice (whatever the protocol)."""
        return AuthMethod(self._select_value("smtp-auth"))

    @property
    def oauth_chosen(self) -> bool:
        """True when the form logs in with an OAuth2 sign-in (SMTP, Authentication OAuth2)."""
        return self.protocol is MailProtocol.SMTP and self.auth_method is AuthMethod.OAUTH2

    @property
    def oauth(self) -> OAuthService:
        """The app's OAuth2 service."""
        return self.services.get_oauth()

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Programmatic changes: do not treat them as user edits."""
        try:
            with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
                yield
        finally:
            self._remember()

    def _remember(self) -> None:
        """Note every field's value: a later Changed with the same value is no edit."""
        if not self._indexed:
            self._index()
        found = self._nodes_by_class.get("form-values")
        if found is None:
            query = "#form-pane Input, #form-pane Select, #form-pane Checkbox"
            found = self._nodes_by_class["form-values"] = tuple(self.query(query))
        for widget in found:
            if isinstance(widget, Input | Select | Checkbox) and widget.id:
                self._seen[widget.id] = widget.value

    def _edited(self, widget: Widget, value: object, current: object) -> bool:
        """True for a real user edit.

        Widgets post Changed at mount too, and a programmatic fill may overtake
        those messages: an event whose value is no longer the widget's (stale) or
        is the value already handled is not an edit.
        """
        if value != current:
            return False
        key = widget.id or ""
        if key in self._seen and self._seen[key] == value:
            return False
        self._seen[key] = value
        return True

    def form_data(self) -> dict[str, Any]:
        """The form as a settings dict (the loaded file's other keys kept)."""
        data = self._base.model_dump(mode="json")
        smtp_mode = self.protocol is MailProtocol.SMTP
        port_text = self._input("smtp-port").value.strip()
        timeout_text = self._input("timeout").value.strip()
        username = self._input("smtp-username").value
        from_shown = self._node("f-smtp-from-address", Widget).display
        data.update(
            protocol=self.protocol.value,
            preset=self.preset_key,
            from_name=self._input("from-name").value,
            copy_to=self._input("copy-to").value if self._checked("copy-enabled") else "",
            reply_to=(
                self._input("reply-to").value
                if not smtp_mode or self._checked("reply-enabled")
                else ""
            ),
            timeout=timeout_text or 20,
        )
        data["smtp"].update(
            host=self._input("smtp-host").value,
            port=int(port_text) if port_text.isdigit() else port_text,
            security=str(self._select_value("smtp-security")),
            username=username,
            from_address=self._input("smtp-from-address").value if from_shown else "",
            verify_tls=not self._checked("no-verify"),
            ca_file=self._input("smtp-ca-file").value,
            auth=str(self._select_value("smtp-auth")),
        )
        data["http"].update(url=self._input("http-url").value)
        # Pasted from a portal, these often carry a stray space at either end.
        data["oauth"].update(
            provider=str(self._select_value("oauth-provider")),
            tenant=self._input("oauth-tenant").value.strip(),
            client_id=self._input("oauth-client-id").value.strip(),
            device_authorization_url=self._input("oauth-device-url").value.strip(),
            token_url=self._input("oauth-token-url").value.strip(),
            scope=self._input("oauth-scope").value.strip(),
        )
        return data

    def collect(self) -> tuple[Settings | None, list[tuple[str, str]]]:
        """The settings in the form, or the ``(field, message)`` errors."""
        try:
            return Settings.model_validate(self.form_data()), []
        except ValidationError as exc:
            return None, field_errors(exc)

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Fill the form from the settings file; an unreadable file is reported, not touched."""
        store = self.services.store
        notice = self._node("load-error", Notice)
        try:
            settings = store.load()
        except StoreError as exc:
            self.load_error = str(exc)
            notice.say(
                f"The settings file could not be read:\n{exc}\n"
                "It has not been changed. Fix it in an editor, or fill in the form and "
                "Save to replace it (you will be asked first).",
                "error",
            )
            self.fill(Settings.unconfigured(), show_errors=False)
            return
        self.load_error = ""
        # e.g. a world-readable file from an older version, made private on load.
        notice.say("\n".join(store.notices), "warning")
        store.notices.clear()
        self.fill(settings, show_errors=store.exists())

    def fill(self, settings: Settings, *, show_errors: bool, password: str | None = None) -> None:
        """Put ``settings`` into the form (no user-edit side effects)."""
        self._base = settings
        smtp = settings.smtp
        with self._quiet():
            self._node("preset", Select).value = settings.preset
            self._node("protocol", Select).value = settings.protocol
            self._input("http-url").value = settings.http.url
            self._input("smtp-host").value = smtp.host
            self._input("smtp-port").value = str(smtp.port)
            self._node("smtp-security", Select).value = smtp.security
            self._input("smtp-username").value = smtp.username
            self._input("smtp-from-address").value = smtp.from_address
            self._input("from-name").value = settings.from_name
            self._node("copy-enabled", Checkbox).value = bool(settings.copy_to)
            self._input("copy-to").value = settings.copy_to
            self._node("reply-enabled", Checkbox).value = bool(settings.reply_to)
            self._input("reply-to").value = settings.reply_to
            self._node("no-verify", Checkbox).value = not smtp.verify_tls
            oauth = settings.oauth
            generic = smtp.auth is AuthMethod.OAUTH2 and oauth.provider is OAuthProvider.GENERIC
            self._node("advanced", Checkbox).value = (
                bool(smtp.ca_file) or (settings.timeout != 20) or generic
            )
            self._input("smtp-ca-file").value = smtp.ca_file
            self._input("timeout").value = f"{settings.timeout:g}"
            self._node("smtp-auth", Select).value = smtp.auth
            self._node("oauth-provider", Select).value = oauth.provider
            self._input("oauth-tenant").value = oauth.tenant
            self._input("oauth-client-id").value = oauth.client_id
            self._input("oauth-device-url").value = oauth.device_authorization_url
            self._input("oauth-token-url").value = oauth.token_url
            self._input("oauth-scope").value = oauth.scope
            if password is not None:
                self._input("password").value = password
        self._refusal = ""
        self._status_key = None
        self.touched = set(FIELD_WIDGETS) if show_errors else set()
        self._refresh()

    def apply_demo(self, settings: Settings, password: str) -> None:
        """Demo mode: the sandbox is up; fill the form with its settings and password."""
        if not self._mounted:
            self._pending_demo = (settings, password)
            return
        self._demo_settings = settings
        self.fill(settings, show_errors=True, password=password)
        self._node("status", Notice).say(
            "Demo: the local sandbox is running. Press ctrl+t to test, ctrl+s to save "
            "(to a temporary config).",
            "success",
        )

    # ------------------------------------------------------------------ reactive rules

    def _refresh(self) -> None:
        """Apply every visibility rule and warning, then validate."""
        smtp_mode = self.protocol is MailProtocol.SMTP
        advanced = self._checked("advanced")
        for widget in self._classed("smtp"):
            _show(widget, smtp_mode and (advanced or not widget.has_class("advanced")))
        for widget in self._classed("http"):
            _show(widget, not smtp_mode)
        _show(self._node("f-smtp-ca-file", Widget), smtp_mode and advanced)
        _show(self._node("f-timeout", Widget), advanced)
        username = self._input("smtp-username").value
        from_shown = smtp_mode and (
            not looks_like_address(username) or bool(self._input("smtp-from-address").value)
        )
        _show(self._node("f-smtp-from-address", Widget), from_shown)
        _show(self._node("f-copy-to", Widget), self._checked("copy-enabled"))
        oauth_mode = self.oauth_chosen
        for widget in self._classed("oauth"):
            _show(widget, oauth_mode)
        generic = self._select_value("oauth-provider") == OAuthProvider.GENERIC
        _show(self._node("f-oauth-tenant", Widget), oauth_mode and not generic)
        for widget_id in GENERIC_OAUTH_WIDGETS:
            _show(self._node(f"f-{widget_id}", Widget), oauth_mode and generic and advanced)
        password_shown = not oauth_mode
        if self._node("f-password", Widget).display != password_shown:
            self._node("f-password", Widget).display = password_shown
            self.refresh_bindings()
        _show(self._node("f-reply-to", Widget), not smtp_mode or self._checked("reply-enabled"))
        self._set_text(
            "#reply-to-label",
            "Reply-To address" if smtp_mode else "Reply address (required: replies go here)",
        )
        if not smtp_mode:
            password_label = "Relay key (only if the relay needs one)"
        elif oauth_mode:
            # The field is hidden then; the label still says why if it is ever shown.
            password_label = "Password (not used: OAuth2 sign-in, see 'smtpdesk oauth status')"
        else:
            password_label = "Password"
        self._set_text("#password-label", password_label)
        preset = PRESETS.get(self.preset_key, PRESETS["custom"])
        username_input = self._input("smtp-username")
        if username_input.placeholder != preset.username_hint:
            username_input.placeholder = preset.username_hint
        self._refresh_warnings()
        self._refresh_guidance()
        self._refresh_oauth_status(self.validate())

    def _refresh_warnings(self) -> None:
        # Notices hide themselves when empty (a CSS class): they are never given
        # the .smtp/.http classes, whose inline display would override that.
        smtp_mode = self.protocol is MailProtocol.SMTP
        port_text = self._input("smtp-port").value.strip()
        security = self._select_value("smtp-security")
        warnings = []
        if smtp_mode and port_text == "25":
            warnings.append(PORT_25_WARNING)
        if smtp_mode and security == Security.NONE:
            warnings.append(NO_SECURITY_WARNING)
        self._node("security-warning", Notice).say("\n".join(warnings))
        suggestion = OAUTH_SUGGESTIONS.get(self.preset_key, "")
        self._node("auth-notice", Notice).say(
            suggestion if smtp_mode and self.auth_method is AuthMethod.PASSWORD else ""
        )
        verify_notice = self._node("verify-warning", Notice)
        if smtp_mode and self._refusal:
            verify_notice.say(self._refusal, "error")
        elif smtp_mode and self._checked("no-verify"):
            verify_notice.say(NO_VERIFY_WARNING)
        else:
            verify_notice.say("")
        url = self._input("http-url").value
        self._node("http-warning", Notice).say(
            PLAIN_HTTP_WARNING if not smtp_mode and url.startswith("http://") else ""
        )
        self.set_class(not smtp_mode, "-http")

    def _refresh_guidance(self) -> None:
        guidance = self._node("guidance", Static)
        if self.protocol is MailProtocol.HTTP:
            title, text = "Guidance: HTTP relay", HTTP_GUIDANCE
        else:
            preset = PRESETS.get(self.preset_key, PRESETS["custom"])
            title, text = f"Guidance: {preset.label}", preset.guidance
        if guidance.border_title != title:
            guidance.border_title = title
            guidance.update(text)

    def _set_text(self, selector: str, text: str) -> None:
        """Update a label only when its text changes (each update costs a layout)."""
        label = self._node(selector.lstrip("#"), Static)
        if str(label.content) != text:
            label.update(text)

    def validate(self, *, show_all: bool = False) -> Settings | None:
        """Validate the form; show errors of touched (or all) fields under them."""
        if show_all:
            self.touched = set(FIELD_WIDGETS)
        settings, errors = self.collect()
        self.errors = {}
        for name, message in errors:
            self.errors.setdefault(name, message)
        general: list[str] = []
        for label in self._field_errors():
            if label.field == "recipient":
                continue
            message = self.errors.get(label.field, "")
            label.show_message(message if label.field in self.touched else "")
        for name, message in self.errors.items():
            widget_id = FIELD_WIDGETS.get(name)
            shown = widget_id is not None and self.field_shown(widget_id)
            if not shown and (show_all or name in self.touched or widget_id is None):
                label_text = Settings.FIELD_LABELS.get(name, name or "settings")
                general.append(f"{label_text}: {message}")
        self._node("form-errors", Notice).say("\n".join(general), "error")
        return settings

    def _field_errors(self) -> tuple[FieldError, ...]:
        """Every field's error line (looked up once)."""
        if not self._indexed:
            self._index()
        found = self._nodes_by_class.get("FieldError")
        if found is None:
            found = self._nodes_by_class["FieldError"] = tuple(self.query(FieldError))
        return tuple(label for label in found if isinstance(label, FieldError))

    def field_shown(self, widget_id: str) -> bool:
        node: Widget | None = self._node(widget_id, Widget)
        while node is not None and node is not self:
            if not node.display:
                return False
            parent = node.parent
            node = parent if isinstance(parent, Widget) else None
        return True

    def _matching_preset(self) -> str:
        port_text = self._input("smtp-port").value.strip()
        if not port_text.isdigit():
            return "custom"
        host = self._input("smtp-host").value.strip()
        security = Security(self._select_value("smtp-security"))
        demo = self._demo_settings
        if (
            demo is not None
            and host == demo.smtp.host
            and int(port_text) == demo.smtp.port
            and security is demo.smtp.security
        ):
            return "sandbox"
        return preset_for(host, int(port_text), security, self.preset_key)

    def choose_preset(self, key: str) -> None:
        """Fill host, port, security and the username hint from a preset."""
        preset = PRESETS[key]
        with self._quiet():
            self._node("preset", Select).value = key
            self._node("protocol", Select).value = MailProtocol.SMTP
            if key == "sandbox" and self._demo_settings is not None:
                demo = self._demo_settings
                self._input("smtp-host").value = demo.smtp.host
                self._input("smtp-port").value = str(demo.smtp.port)
                self._node("smtp-security", Select).value = demo.smtp.security
                self._input("smtp-username").value = demo.smtp.username
                self._input("smtp-ca-file").value = demo.smtp.ca_file
                self._node("advanced", Checkbox).value = True
                self._node("no-verify", Checkbox).value = False
            elif key != "custom":
                self._input("smtp-host").value = preset.host
                self._input("smtp-port").value = str(preset.port)
                self._node("smtp-security", Select).value = preset.security
            if preset.strict_tls and self._checked("no-verify"):
                self._node("no-verify", Checkbox).value = False
        self._refusal = ""
        self.touched.update({"smtp.host", "smtp.port", "smtp.security"})
        self._refresh()

    # ------------------------------------------------------------------ events

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and self._edited(
            event.select, event.value, event.select.value
        ):
            self.choose_preset(str(event.value))

    @on(Select.Changed, "#protocol")
    def _protocol_changed(self, event: Select.Changed) -> None:
        if not self._edited(event.select, event.value, event.select.value):
            return
        self.touched.add("protocol")
        self._refresh()

    @on(Select.Changed, "#smtp-security")
    def _security_changed(self, event: Select.Changed) -> None:
        if not self._edited(event.select, event.value, event.select.value):
            return
        self.touched.add("smtp.security")
        self._follow_preset()
        self._refresh()

    @on(Select.Changed, "#smtp-auth")
    def _auth_changed(self, event: Select.Changed) -> None:
        if not self._edited(event.select, event.value, event.select.value):
            return
        self.touched.add("smtp.auth")
        self._refresh()

    @on(Select.Changed, "#oauth-provider")
    def _provider_changed(self, event: Select.Changed) -> None:
        if not self._edited(event.select, event.value, event.select.value):
            return
        self.touched.add("oauth.provider")
        if event.value == OAuthProvider.GENERIC and not self._checked("advanced"):
            # The generic provider's URLs and scope live under "advanced": show them.
            with self._quiet():
                self._node("advanced", Checkbox).value = True
        self._refresh()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        if widget_id in ("password", "recipient") or not self._edited(
            event.input, event.value, event.input.value
        ):
            return
        if widget_id in WIDGET_FIELDS:
            self.touched.add(WIDGET_FIELDS[widget_id])
        if widget_id == "smtp-port":
            port_text = event.value.strip()
            if port_text.isdigit() and 1 <= int(port_text) <= 65535:
                with self._quiet():
                    self._node("smtp-security", Select).value = security_for_port(int(port_text))
        if widget_id in ("smtp-host", "smtp-port"):
            self._follow_preset()
        self._refresh()

    @on(Input.Blurred)
    def _input_left(self, event: Input.Blurred) -> None:
        widget_id = event.input.id or ""
        if widget_id in WIDGET_FIELDS and WIDGET_FIELDS[widget_id] not in self.touched:
            self.touched.add(WIDGET_FIELDS[widget_id])
            self.validate()

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        if not self._edited(event.checkbox, event.value, event.checkbox.value):
            return
        if event.checkbox.id == "no-verify":
            self._refusal = ""
            preset = PRESETS.get(self.preset_key, PRESETS["custom"])
            if event.value and self.preset_key in STRICT_TLS_PRESETS:
                with self._quiet():
                    event.checkbox.value = False
                self._refusal = (
                    f"Refused for {preset.label}: its certificates are always valid, so a "
                    "certificate error means the connection is being intercepted. Check the "
                    "host name, or the clock of this machine."
                )
            self.touched.add("smtp.verify_tls")
        self._refresh()

    def _follow_preset(self) -> None:
        """After an edit: the preset label becomes Custom only when the values no longer match."""
        matching = self._matching_preset()
        if matching != self.preset_key:
            with self._quiet():
                self._node("preset", Select).value = matching

    @on(Button.Pressed, "#password-toggle")
    def _toggle_pressed(self) -> None:
        self.action_toggle_password()

    @on(Button.Pressed, "#oauth-sign-in")
    def _sign_in_pressed(self) -> None:
        self.action_sign_in()

    @on(Button.Pressed, "#test-button")
    def _test_pressed(self) -> None:
        self.action_test()

    @on(Button.Pressed, "#save-button")
    def _save_pressed(self) -> None:
        self.action_save()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cancel is offered only while a test runs; Test is dimmed meanwhile."""
        if action == "cancel_test":
            return self.sending
        if action == "test" and self.sending:
            return None
        if action == "toggle_password" and self._mounted and self.oauth_chosen:
            return False  # no password field with an OAuth2 sign-in
        return True

    def watch_sending(self, sending: bool) -> None:
        self._node("test-button", Button).disabled = sending
        self.set_class(sending, "-sending")

    def action_toggle_password(self) -> None:
        """Show or mask the password."""
        field_widget = self._node("password", PasswordInput)
        field_widget.password = not field_widget.password
        self._node("password-toggle", Button).label = "Show" if field_widget.password else "Hide"

    # ------------------------------------------------------------------ OAuth2

    def action_sign_in(self) -> None:
        """Open the OAuth2 sign-in dialog for the settings in the form."""
        if not self.oauth_chosen:
            return
        settings = self.validate(show_all=True)
        if settings is None:
            self._invalid()
            return
        key = self._oauth_key(settings)

        def signed_in(status: OAuthStatus | None) -> None:
            if status is None:
                return
            if status.signed_in:
                self._node("status", Notice).say(
                    f"Signed in with OAuth2 as {status.account}. Test the settings next.",
                    "success",
                )
            if self._status_key == key:
                self._show_oauth_status(status, key)
            else:  # the form changed while the dialog was open: ask again
                self._status_key = None
                self._refresh_oauth_status(self.validate())

        from screens.oauth import OAuthSignInScreen

        self.app.push_screen(OAuthSignInScreen(settings, self.oauth), signed_in)

    @staticmethod
    def _oauth_key(settings: Settings) -> tuple[str, ...]:
        """What the sign-in status depends on (the keyring entry and the registration)."""
        oauth = settings.oauth
        return (
            settings.smtp.username,
            settings.smtp.host,
            oauth.provider.value,
            oauth.tenant,
            oauth.client_id,
            oauth.device_authorization_url,
            oauth.token_url,
            oauth.scope,
        )

    def _refresh_oauth_status(self, settings: Settings | None) -> None:
        """Ask the service for the sign-in status when what it depends on changed."""
        line = self._node("oauth-status", Static)
        if not self.oauth_chosen:
            self._status_key = None
            return
        if settings is None:
            self._status_key = None
            self.oauth_status = None
            self._set_status_line("Sign-in status: once the fields are complete (see red).")
            return
        key = self._oauth_key(settings)
        if key == self._status_key:
            return
        self._status_key = key
        self.oauth_status = None
        line.set_class(False, "-signed-in")
        self._set_status_line("Checking the sign-in…")
        self._status_worker(settings, key)

    def _set_status_line(self, text: str) -> None:
        line = self._node("oauth-status", Static)
        if str(line.content) != text:
            line.update(text)

    @work(thread=True, exclusive=True, group="oauth-status", exit_on_error=False)
    def _status_worker(self, settings: Settings, key: tuple[str, ...]) -> None:
        status = self.oauth.status(settings)  # blocking: a keyring call
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_oauth_status, status, key)

    def _show_oauth_status(self, status: OAuthStatus, key: tuple[str, ...]) -> None:
        if key != self._status_key:
            return  # an answer for settings the form no longer holds
        self.oauth_status = status
        self._set_status_line(oauth_status_text(status))
        self._node("oauth-status", Static).set_class(status.signed_in, "-signed-in")

    def _invalid(self) -> None:
        self.validate(show_all=True)
        self._node("status", Notice).say(
            "Some fields need attention: see the messages in red.", "error"
        )
        for name in self.errors:
            widget_id = FIELD_WIDGETS.get(name)
            if widget_id and self.field_shown(widget_id):
                self.query_one(f"#{widget_id}").focus()
                break

    def action_test(self) -> None:
        """Ask for the recipient, then run the test send."""
        if self.sending:
            return
        settings = self.validate(show_all=True)
        if settings is None:
            self._invalid()
            return
        self._node("status", Notice).say("")
        default = self.last_recipient or settings.sender

        def start(recipient: str | None) -> None:
            if recipient:
                self.last_recipient = recipient
                self.start_test(settings, recipient)

        from screens.dialogs import RecipientScreen

        self.app.push_screen(
            RecipientScreen(default, cursor_blink=self.services.cursor_blink), start
        )

    def start_test(self, settings: Settings, recipient: str) -> None:
        """Run the test send of ``settings`` to ``recipient`` (no dialog)."""
        self.sending = True
        self._test_worker(settings, self.password, recipient)

    def action_cancel_test(self) -> None:
        """Stop the running test at once."""
        self.workers.cancel_group(self, "send")

    # ------------------------------------------------------------------ test send

    def _write(self, line: str) -> None:
        self._node("transcript", Log).write_line(neutralise(line))

    def _on_event(self, event: TranscriptEvent) -> None:
        self._write(event.format())

    @work(exclusive=True, group="send", exit_on_error=False)
    async def _test_worker(self, settings: Settings, typed: str, recipient: str) -> None:
        log = self._node("transcript", Log)
        log.clear()
        self._node("hints-box", Widget).display = False
        self._node("hints", HintsPanel).show_hints("", ())
        status = self._node("test-status", Notice)
        status.say(f"Testing: sending to {recipient} … (Escape cancels)")
        log.scroll_visible()
        from tui.oauth_smtp import token_source

        try:
            source = token_source(settings, self.oauth)
            if source is not None:
                # XOAUTH2: the access token comes from the sign-in; no password lookup.
                outcome = await self.services.run_test(
                    settings, None, on_event=self._on_event, to=recipient, token_source=source
                )
            else:
                secret = typed or await self._stored_password(settings)
                outcome = await self.services.run_test(
                    settings, secret, on_event=self._on_event, to=recipient
                )
        except asyncio.CancelledError:
            self._write("== cancelled (Escape): connection closed")
            status.say("Test cancelled.", "warning")
            raise
        finally:
            self.sending = False
        self.last_outcome = outcome
        if outcome.ok:
            queue_id = outcome.result.queue_id if outcome.result else ""
            status.say(
                f"✓ Test message sent to {recipient}"
                + (f", queue id {queue_id}" if queue_id else "")
                + f", in {outcome.elapsed_ms / 1000:.2f} s. Save now goes straight through.",
                "success",
            )
            self._tested = (settings, _digest(typed))
            if not self.services.demo:
                self._record_success(settings)
        elif outcome.failure is not None:
            failure = outcome.failure
            step = failure.step.value.upper()
            self._write(f"{'':8} !! FAILED at step {step}: {failure.title} (see Troubleshooting)")
            status.say(f"✗ Test failed at step {step}: {failure.title}", "error")
            box = self._node("hints-box", Widget)
            box.display = True
            self._node("hints", HintsPanel).show_hints(str(failure), failure.hints)
            box.scroll_home(animate=False)
            box.scroll_visible()
        else:
            status.say("Test cancelled.", "warning")
        if source is not None:
            # The sign-in may have changed: a refreshed token, or one no longer accepted.
            self._status_key = None
            self._refresh_oauth_status(self.validate())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for workers that end in an unexpected error (a bug, not a failed send)."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "send":
            self.sending = False
            self._write(f"!! the test stopped with an unexpected error: {error!r}")
            self._node("test-status", Notice).say(
                f"✗ The test stopped with an unexpected error: {error}", "error"
            )
        else:
            self._node("status", Notice).say(f"Unexpected error: {error}", "error")

    async def _stored_password(self, settings: Settings) -> str | None:
        """The password from the environment, password command or keyring (in a thread)."""
        if settings.protocol is MailProtocol.SMTP and not settings.smtp.username:
            return None  # no login: nothing to look up (and no keyring noise)
        from tui import secrets

        try:
            return await asyncio.to_thread(secrets.get_password, settings)
        except secrets.SecretsError as exc:
            first_line = str(exc).split("\n", 1)[0]
            self._write(f"{'':8} == no stored password: {first_line}")
            return None

    @work(thread=True, group="record", exit_on_error=False)
    def _record_success(self, settings: Settings) -> None:
        from tui import verified

        verified.record_success(settings)

    # ------------------------------------------------------------------ save

    def is_verified(self, settings: Settings) -> bool:
        """True when exactly these settings (and this typed password) passed a test."""
        if self._tested is not None and self._tested == (settings, _digest(self.password)):
            return True
        if self.password or self.services.demo:
            return False
        from tui import verified

        return verified.is_verified(settings)

    def action_save(self) -> None:
        """Save ("Update"): after a check that the settings were tested."""
        settings = self.validate(show_all=True)
        if settings is None:
            self._invalid()
            return
        if self.load_error and not self.overwrite_confirmed:
            from screens.dialogs import Choice, ChoiceScreen

            def replace(answer: str | None) -> None:
                if answer == "replace":
                    self.overwrite_confirmed = True
                    self._save_checked(settings)

            self.app.push_screen(
                ChoiceScreen(
                    "Replace the unreadable settings file?",
                    f"{self.load_error}\n\nSaving replaces {self.services.store.path} with "
                    "the settings in this form (the old file is kept as settings.toml.bak).",
                    [Choice("replace", "Replace it", "error"), Choice("back", "Back")],
                    focus="back",
                ),
                replace,
            )
            return
        self._save_checked(settings)

    def _password_to_store(self, settings: Settings) -> str:
        """The typed password to keep in the keyring: none with an OAuth2 sign-in."""
        from tui.oauth_smtp import uses_oauth

        return "" if uses_oauth(settings) else self.password

    def _save_checked(self, settings: Settings) -> None:
        if self.is_verified(settings):
            self._save_worker(settings, self._password_to_store(settings))
            return
        from screens.dialogs import Choice, ChoiceScreen
        from tui import verified

        tested_before = self._tested is not None or (
            not self.services.demo and verified.last_success() is not None
        )
        reason = (
            "These settings changed since the last successful test."
            if tested_before
            else "These settings were never tested."
        )

        def answer(choice: str | None) -> None:
            if choice == "save":
                self._save_worker(settings, self._password_to_store(settings))
            elif choice == "test":
                self.action_test()

        self.app.push_screen(
            ChoiceScreen(
                "Save untested settings?",
                f"{reason} A test send shows at once whether mail gets out.",
                [
                    Choice("test", "Test first", "primary"),
                    Choice("save", "Save anyway", "warning"),
                    Choice("back", "Back"),
                ],
                focus="test",
            ),
            answer,
        )

    @work(thread=True, group="save", exit_on_error=False)
    def _save_worker(self, settings: Settings, password: str) -> None:
        store = self.services.store
        try:
            store.save(settings)
        except StoreError as exc:
            self.app.call_from_thread(self._saved, settings, f"Not saved: {exc}", "error")
            return
        message = f"Settings saved to {store.path}."
        kind = "success"
        if password and self.services.demo:
            message += " Demo: the sandbox password is not stored anywhere."
        elif password:
            from tui import secrets

            try:
                secrets.set_password(settings, password)
            except secrets.SecretsError as exc:
                help_text = str(exc)
                if secrets.NO_KEYRING_HELP not in help_text:
                    help_text += "\n" + secrets.NO_KEYRING_HELP
                message += f"\nThe password was NOT saved: {help_text}"
                kind = "warning"
            else:
                message += " The password is in the system keyring."
        self.app.call_from_thread(self._saved, settings, message, kind)

    def _saved(self, settings: Settings, message: str, kind: str) -> None:
        if kind != "error":
            self.load_error = ""
            self.overwrite_confirmed = False
            self._node("load-error", Notice).say("")
            self._base = settings
        status = self._node("status", Notice)
        status.say(message, kind)
        status.scroll_visible()
        # The toast is the first line only (the full text, e.g. the no-keyring help,
        # stays under the buttons); never markup: paths and help contain brackets.
        summary = message.split("\n", 1)[0]
        if kind == "warning":
            summary += " The password was NOT saved: see the note under the buttons."
        severity = {"error": "error", "warning": "warning"}.get(kind, "information")
        self.notify(summary, severity=severity, markup=False)  # type: ignore[arg-type]


__all__ = ["RunTest", "ScreenServices", "SettingsScreen", "oauth_status_text"]
