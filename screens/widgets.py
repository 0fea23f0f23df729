"""Small widgets of the settings screen: the password field, field errors, text panels.

The password field is the one that matters: Textual's ``Input`` copies its
selected text with ctrl+c and selects everything when it gains focus, so a
masked password would go to the SSH client's clipboard in cleartext with one
key. ``PasswordInput`` refuses copy and cut while masked and never selects on
focus.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.actions import SkipAction
from textual.widgets import Input, Static

from tui.terminal import neutralise, neutralise_lines


class PasswordInput(Input):
    """A masked Input whose value cannot be copied or cut while masked."""

    HELP: ClassVar[str | None] = (
        "The password is masked. **ctrl+r** shows or hides it. "
        "Copy and cut are refused while it is masked."
    )

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("password", True)
        kwargs["select_on_focus"] = False
        super().__init__(**kwargs)

    def action_copy(self) -> None:
        """Copy the selection, unless the value is masked."""
        if self.password:
            # SkipAction lets the key go on to the app (ctrl+c → "how to quit" notice)
            # instead of putting the cleartext password on the clipboard.
            raise SkipAction()
        super().action_copy()

    def action_cut(self) -> None:
        """Cut the selection, unless the value is masked."""
        if self.password:
            raise SkipAction()
        super().action_cut()


class FieldError(Static):
    """The validation message under one field; empty (and hidden) when the field is valid."""

    DEFAULT_CSS: ClassVar[str] = """
    FieldError {
        color: $text-error;
        height: auto;
        padding: 0 1;
        display: none;
    }
    FieldError.-shown { display: block; }
    """

    def __init__(self, field: str, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.field = field
        """The dotted settings field this label reports (``smtp.host``)."""
        self.message = ""
        """The message currently shown, '' when valid."""

    def show_message(self, message: str) -> None:
        """Show ``message`` (or hide the label when it is empty)."""
        message = neutralise_lines(message)
        if message == self.message:
            return
        self.message = message
        self.update(message)
        self.set_class(bool(message), "-shown")


class Notice(Static):
    """A plain-text line that is shown only when it has something to say."""

    DEFAULT_CSS: ClassVar[str] = """
    Notice {
        height: auto;
        padding: 0 1;
        display: none;
    }
    Notice.-shown { display: block; }
    Notice.-warning { color: $text-warning; }
    Notice.-error { color: $text-error; }
    Notice.-success { color: $text-success; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.text = ""
        """The text shown, '' when hidden."""

    def say(self, text: str, kind: str = "warning") -> None:
        """Show ``text`` styled as ``kind`` (warning, error, success, info); '' hides."""
        text = neutralise_lines(text)  # may quote a server's reply or a command's stderr
        if text == self.text and (not text or self.has_class(f"-{kind}")):
            return
        self.text = text
        self.update(text)
        self.set_class(bool(text), "-shown")
        for name in ("warning", "error", "success"):
            self.set_class(kind == name, f"-{name}")


class HintsPanel(Static):
    """The troubleshooting hints of the last failed test: selectable text, no markup."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.hints: tuple[str, ...] = ()
        """The hints shown, in order."""
        self.failure_title = ""

    def show_hints(self, title: str, hints: tuple[str, ...]) -> None:
        """Show a failure's title and its hints, one bullet each (a hint may span lines)."""
        # The title carries the server's reply: neutralised, so a hostile server
        # cannot drive the terminal (Rich keeps ESC in plain text).
        title = neutralise_lines(title)
        self.failure_title = title
        self.hints = hints
        lines = [title] if title else []
        for hint in hints:
            first, *rest = hint.split("\n")
            lines += ["", f"• {first}", *(f"  {line}" for line in rest)]
        self.update("\n".join(lines))

    @property
    def text(self) -> str:
        """The panel's plain text."""
        return "\n".join([self.failure_title, *self.hints]) if self.failure_title else ""


def cell(value: str) -> Text:
    """A DataTable cell shown as plain text.

    DataTable parses ``str`` cells as markup: a contact called "ACME [Ltd]" or a
    server reply with ``[bold]`` would be restyled, and a stray ``[/x]`` raises.
    Control characters are escaped as everywhere else.
    """
    return Text(neutralise(value), no_wrap=True, end="")
