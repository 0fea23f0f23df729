"""Small modal dialogs: the test recipient, and the choices before a save.

Each is a ``ModalScreen`` that dismisses with its answer; keys are declared in
``BINDINGS`` (escape always backs out) and the body scrolls at 80x24.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from screens.widgets import FieldError
from transports.addresses import normalize_address


class RecipientScreen(ModalScreen[str | None]):
    """Ask where the test message goes; dismisses with the address or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="recipient-cancel"),
    ]

    def __init__(self, default: str, *, cursor_blink: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default = default
        """The address offered: the last one used this session, else the sender."""
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label("Send the test message to", classes="dialog-title")
            yield Input(
                self.default,
                placeholder="you@example.com",
                id="recipient",
                select_on_focus=False,
            )
            yield FieldError("recipient", id="err-recipient")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send test", variant="primary", id="recipient-send")
                yield Button("Cancel", id="recipient-cancel-button")

    def on_mount(self) -> None:
        recipient = self.query_one("#recipient", Input)
        recipient.cursor_blink = self._cursor_blink
        recipient.focus()

    def _submit(self) -> None:
        value = self.query_one("#recipient", Input).value.strip()
        try:
            address = normalize_address(value)
        except ValueError as exc:
            self.query_one("#err-recipient", FieldError).show_message(f"Recipient {exc}")
            return
        self.dismiss(address)

    @on(Input.Submitted, "#recipient")
    def _on_submitted(self) -> None:
        self._submit()

    @on(Button.Pressed, "#recipient-send")
    def _on_send(self) -> None:
        self._submit()

    @on(Button.Pressed, "#recipient-cancel-button")
    def _on_cancel(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        """Back out without testing."""
        self.dismiss(None)


@dataclass(frozen=True)
class Choice:
    """One button of a ``ChoiceScreen``."""

    key: str
    """What the dialog dismisses with."""
    label: str
    variant: str = "default"


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few buttons; dismisses with the chosen key, or ``None`` on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back", id="choice-cancel"),
    ]

    def __init__(
        self, title: str, message: str, choices: list[Choice], *, focus: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.title_text = title
        self.message = message
        self.choices = choices
        self.focus_key = focus
        """The key of the button focused at open: the safe answer."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.message, markup=False, classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                for choice in self.choices:
                    yield Button(
                        choice.label,
                        variant=choice.variant,  # type: ignore[arg-type]
                        id=f"choice-{choice.key}",
                    )

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self.focus_key}", Button).focus()

    @on(Button.Pressed)
    def _on_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        self.dismiss(button_id.removeprefix("choice-"))

    def action_cancel(self) -> None:
        """Back out: nothing is done."""
        self.dismiss(None)
