"""The Textual application: ``SmtpDeskApp``, the ``make_app`` factory and ``run_tui``.

``make_app`` is the one place the app is put together, used by ``run_tui`` (which
the CLI calls) and by the tests, which inject a fake engine to keep snapshots
free of variable content (times, ports, queue ids):

    app = make_app(config_path=tmp / "settings.toml", run_test=fake)
    async with app.run_test(size=(80, 24)) as pilot: ...

In demo mode the app starts the sandbox in-process on its own event loop (after
mount, in a worker), fills the form with the sandbox's settings and password,
and stops the sandbox when the app ends. Settings go to a temporary folder; the
demo never writes the keyring or the record of the last successful test.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from screens.settings import RunTest, ScreenServices, SettingsScreen
from transports.presets import PRESETS
from transports.settings import Settings
from tui.store import SettingsStore

if TYPE_CHECKING:  # imported where used: the first paint needs none of them
    from screens.email import DocumentServices
    from transports.base import TokenSource
    from transports.events import EventSink
    from transports.testsend import TestOutcome
    from tui.oauth import OAuthService
    from tui.sandbox import Sandbox

# Start-up (bench/tui_start.py): only the settings screen is imported before the first
# paint. The Documents/Email/Sent screens (fpdf2, fontTools, the batch), the OAuth2
# service (httpx), the engine's message builder and the demo sandbox (aiosmtpd,
# cryptography) are imported on first use: they were ~0.9 s of a 1.3 s start.
#
# The cyclic garbage collector is paused while the app starts (``on_load``) and resumed
# once the settings screen has painted and gone idle: starting builds ~150 widgets and
# their styles, long-lived objects that the collector traversed again and again (a
# full collection alone took 30-60 ms of the first paint). They are then frozen
# (``gc.freeze``): later full collections skip them, which keeps keystrokes free of
# those pauses. The app's end resumes the collector in every case (freezing what the
# start built if it ends before going idle) and leaves them frozen: the process
# usually ends with the app, and its teardown then skips them (~35 ms from the app's
# end to the process's, instead of ~210 ms with them unfrozen). The next app's start
# in the same process (a test session) unfreezes them, so they stay collectable.


_start_frozen = False
"""True while the objects of an app's start are frozen (see the comment above)."""


async def engine_run_test(
    settings: Settings,
    secret: str | None,
    *,
    on_event: EventSink,
    to: str | None = None,
    token_source: TokenSource | None = None,
) -> TestOutcome:
    """``transports.testsend.run_test``, imported on the first test send."""
    from transports.testsend import run_test

    return await run_test(settings, secret, on_event=on_event, to=to, token_source=token_source)


class SmtpDeskApp(App[int]):
    """The smtpdesk terminal app."""

    TITLE = "smtpdesk"
    GC_PAUSE_AT_MOST: ClassVar[float] = 2.0
    """Seconds after mount by which the start-up pause of the garbage collector ends."""
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit", tooltip="Leave smtpdesk"),
        Binding(
            "ctrl+o",
            "open_documents",
            "Documents",
            id="documents",
            tooltip="The documents folder: email invoices, quotes, orders, reports",
        ),
    ]

    def __init__(
        self,
        services: ScreenServices,
        *,
        demo_folder: Path | None = None,
        documents_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.demo_folder = demo_folder
        """Where the demo sandbox keeps its messages (demo mode only)."""
        self.documents_dir = documents_dir
        """The documents folder (for the Documents screen of a later issue)."""
        self.sandbox: Sandbox | None = None
        """The running demo sandbox, if any."""
        self._document_services: DocumentServices | None = None
        self._gc_paused = False

    @property
    def document_services(self) -> DocumentServices:
        """What the Documents, Email and Sent screens use (made on first use)."""
        if self._document_services is None:
            from screens.email import DocumentServices

            services = DocumentServices(
                store=self.services.store,
                documents_dir=self.documents_dir,
                typed_password=self._typed_password,
                cursor_blink=self.services.cursor_blink,
                oauth=self.oauth,  # one OAuth2 service per app: the form's sign-in serves all
            )
            if self.services.demo:
                services.secret = self._sandbox_secret
            self._document_services = services
        return self._document_services

    @property
    def oauth(self) -> OAuthService:
        """The app's one OAuth2 service: sign-in, status and access tokens for every send."""
        return self.services.get_oauth()

    def get_default_screen(self) -> Screen[Any]:
        return SettingsScreen(self.services)

    def on_load(self) -> None:
        global _start_frozen
        if _start_frozen:  # an earlier app's start-up objects: collectable again
            _start_frozen = False
            gc.unfreeze()
        if gc.isenabled():
            gc.disable()
            self._gc_paused = True

    def on_mount(self) -> None:
        # Runs on the settings screen once its first frame is painted and nothing is left
        # to lay out or repaint; the timer in case that idle never comes (e.g. a screen
        # pushed over the settings before it went idle).
        self.screen.call_after_refresh(self._resume_gc)
        self.set_timer(self.GC_PAUSE_AT_MOST, self._resume_gc, name="resume gc")
        if self.demo_folder is not None:
            self._start_sandbox(self.demo_folder)

    def _resume_gc(self) -> None:
        """End the start-up pause of the garbage collector (see the module comment)."""
        global _start_frozen
        if self._gc_paused:
            self._gc_paused = False
            gc.freeze()
            _start_frozen = True
            gc.enable()

    @work(exclusive=True, group="sandbox", exit_on_error=False)
    async def _start_sandbox(self, folder: Path) -> None:
        from tui.sandbox import Sandbox

        sandbox = Sandbox(folder)
        try:
            await sandbox.start()
        except OSError as exc:
            self.notify(f"The demo sandbox could not start: {exc}", severity="error")
            return
        self.sandbox = sandbox
        screen = self.get_screen_settings()
        if screen is not None:
            screen.apply_demo(sandbox.settings("starttls"), sandbox.password)

    async def on_unmount(self) -> None:
        self._resume_gc()
        if self.sandbox is not None:
            await self.sandbox.stop()
            self.sandbox = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_documents":
            return isinstance(self.screen, SettingsScreen)
        return True

    def action_open_documents(self) -> None:
        """Open the Documents screen over the settings."""
        if isinstance(self.screen, SettingsScreen):
            from screens.documents import DocumentsScreen

            self.push_screen(DocumentsScreen(self.document_services))

    def _typed_password(self) -> str:
        screen = self.get_screen_settings()
        return screen.password if screen is not None and screen.ready else ""

    async def _sandbox_secret(self, settings: Settings) -> str | None:
        return self.sandbox.password if self.sandbox is not None else None

    def get_screen_settings(self) -> SettingsScreen | None:
        """The settings screen, wherever it is in the stack."""
        for screen in self.screen_stack:
            if isinstance(screen, SettingsScreen):
                return screen
        return None

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette: Textual's own commands plus Test, Save, password and presets."""
        yield from super().get_system_commands(screen)
        if not isinstance(screen, SettingsScreen):
            return
        yield SystemCommand(
            "Test email settings",
            "Send a test message and watch the transcript",
            screen.action_test,
        )
        yield SystemCommand("Save settings", "Save (Update) the settings", screen.action_save)
        if screen.ready and screen.oauth_chosen:
            yield SystemCommand(
                "Sign in (OAuth2)",
                "Sign in with a code on any device (Office 365 / Outlook) for this mailbox",
                screen.action_sign_in,
            )
        else:
            yield SystemCommand(
                "Show/Hide password", "Reveal or mask the password", screen.action_toggle_password
            )
        for key, preset in PRESETS.items():
            yield SystemCommand(
                f"Preset: {preset.label}",
                f"Fill host, port and security for {preset.label} and show its guidance",
                functools.partial(screen.choose_preset, key),
            )


def make_app(
    *,
    config_path: Path,
    documents_dir: Path | None = None,
    demo: bool = False,
    run_test: RunTest | None = None,
    demo_folder: Path | None = None,
    cursor_blink: bool = True,
    animations: bool = True,
    theme: str | None = None,
    oauth: OAuthService | None = None,
) -> SmtpDeskApp:
    """Build the app. Tests pass ``run_test`` (a fake engine), ``cursor_blink=False``
    and ``animations=False`` for stable snapshots.

    Args:
        config_path: the settings file to load and save.
        documents_dir: the documents folder, if given on the command line.
        demo: start the sandbox in-process and pre-fill the form with it.
        run_test: the test-send engine; ``transports.testsend.run_test`` by default.
        demo_folder: where the demo sandbox keeps messages (default: next to the config).
        cursor_blink: off for snapshots.
        animations: off for snapshots.
        theme: a Textual theme name, fixed in snapshots.
        oauth: the app's one OAuth2 service (tests inject one with a fake authority);
            a default ``OAuthService()`` otherwise, made on first use (it imports httpx).
    """
    services = ScreenServices(
        store=SettingsStore(config_path),
        run_test=run_test or engine_run_test,
        demo=demo,
        cursor_blink=cursor_blink,
        oauth=oauth,
    )
    folder = (demo_folder or config_path.parent / "sandbox") if demo else None
    app = SmtpDeskApp(services, demo_folder=folder, documents_dir=documents_dir)
    if not animations:
        app.animation_level = "none"
    if theme is not None:
        app.theme = theme
    return app


def run_tui(*, config_path: Path, documents_dir: Path | None, demo: bool) -> int:
    """Run the TUI until the user quits; the exit code for the CLI.

    In demo mode ``config_path`` must be a temporary file (the CLI makes a
    temporary folder for the demo); the sandbox keeps its messages beside it.
    """
    app = make_app(config_path=config_path, documents_dir=documents_dir, demo=demo)
    app.run()
    return app.return_code or 0
