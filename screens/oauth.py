"""The OAuth2 sign-in dialog: the device code, large and clear, and a countdown.

``OAuthSignInScreen(settings, service)`` asks the sign-in server for a code
(``OAuthService.start_device_flow``), shows the page to open and the code to
type on any device (a phone will do: nothing needs a browser on this
machine), then waits (``OAuthService.poll``) with a countdown until the code
expires. It dismisses with the new ``OAuthStatus`` on success and ``None``
when cancelled (Escape or the button; nothing is stored then). A failure stays
on screen in plain words (the service's own), with a Close button.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from transports.settings import Settings
from tui.oauth import DeviceCode, OAuthError, OAuthFailure, OAuthService, OAuthStatus, PollUpdate


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class OAuthSignInScreen(ModalScreen[OAuthStatus | None]):
    """Sign in with the device code flow; dismisses with the status or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="oauth-cancel"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    OAuthSignInScreen #oauth-url {
        text-style: bold;
        color: $accent;
        padding: 0 2;
    }
    OAuthSignInScreen #oauth-code {
        text-style: bold;
        width: auto;
        min-width: 20;
        border: heavy $accent;
        padding: 0 3;
        margin: 0 2;
        content-align: center middle;
    }
    OAuthSignInScreen .-hidden {
        display: none;
    }
    OAuthSignInScreen #oauth-state.-error {
        color: $error;
    }
    """

    def __init__(
        self,
        settings: Settings,
        service: OAuthService,
        *,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.service = service
        self._countdown_clock = clock
        """Drives the countdown between polls (fixed in snapshots)."""
        self._cancel_event = asyncio.Event()
        self._expires_at: float | None = None
        self._poll_interval = 0
        self.code: DeviceCode | None = None
        """The code shown, once the server gave one."""
        self.error: OAuthError | None = None
        """The failure shown, if any."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="oauth-dialog"):
            yield Label("Sign in with OAuth2", classes="dialog-title")
            yield Static(f"Account: {self.settings.smtp.username}", id="oauth-account")
            yield Static("Asking the sign-in server for a code…", id="oauth-state")
            yield Static(
                "On any device (a phone will do), open:", id="oauth-open", classes="-hidden"
            )
            yield Static("", id="oauth-url", markup=False, classes="-hidden")
            yield Static("and enter the code:", id="oauth-enter", classes="-hidden")
            yield Static("", id="oauth-code", markup=False, classes="-hidden")
            yield Static("", id="oauth-countdown", classes="-hidden")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="oauth-cancel-button")

    def on_mount(self) -> None:
        self.query_one("#oauth-cancel-button", Button).focus()
        self.set_interval(1, self._countdown_tick)
        self._sign_in()

    # -- the sign-in ------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="oauth-sign-in")
    async def _sign_in(self) -> None:
        try:
            code = await self.service.start_device_flow(self.settings)
            self._show_code(code)
            status = await self.service.poll(
                self.settings, code, cancel=self._cancel_event, on_update=self._poll_progress
            )
        except OAuthError as exc:
            if exc.kind is OAuthFailure.CANCELLED:
                self.dismiss(None)
            else:
                self._show_error(exc)
            return
        self.dismiss(status)

    def _show_code(self, code: DeviceCode) -> None:
        self.code = code
        self.query_one("#oauth-state", Static).update(
            "Waiting for you to sign in. The page asks for the code, then for the "
            "mailbox's account and its consent."
        )
        self.query_one("#oauth-url", Static).update(code.verification_uri)
        self.query_one("#oauth-code", Static).update(code.user_code)
        for name in ("open", "url", "enter", "code", "countdown"):
            self.query_one(f"#oauth-{name}", Static).remove_class("-hidden")

    def _poll_progress(self, update: PollUpdate) -> None:
        self._expires_at = self._countdown_clock() + update.seconds_left
        self._poll_interval = update.interval
        if update.state == "slow_down":
            self.query_one("#oauth-state", Static).update(
                "Waiting for you to sign in (the server asked to check less often)."
            )
        elif update.state == "retrying":
            self.query_one("#oauth-state", Static).update(
                "The sign-in server did not answer; trying again…"
            )
        self._countdown_tick()

    def _countdown_tick(self) -> None:
        if self._expires_at is None or self.error is not None:
            return
        left = self._expires_at - self._countdown_clock()
        self.query_one("#oauth-countdown", Static).update(
            f"The code expires in {_clock_text(left)} · checking every {self._poll_interval} s · "
            "Escape cancels"
        )

    def _show_error(self, exc: OAuthError) -> None:
        self.error = exc
        state = self.query_one("#oauth-state", Static)
        state.update(str(exc))
        state.add_class("-error")
        for name in ("open", "url", "enter", "code", "countdown"):
            self.query_one(f"#oauth-{name}", Static).add_class("-hidden")
        self.query_one("#oauth-cancel-button", Button).label = "Close"

    # -- cancel -----------------------------------------------------------------------

    def action_cancel(self) -> None:
        """Escape: stop waiting (nothing is stored) and close."""
        self._cancel_event.set()
        if self.code is None or self.error is not None:
            # Not polling (yet, or any more): nothing will answer the event.
            self.dismiss(None)

    @on(Button.Pressed, "#oauth-cancel-button")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


__all__ = ["OAuthSignInScreen"]
