"""Server text shown in panels cannot drive the terminal (issue 7).

Rich keeps ESC in plain text, so a reply such as an OSC 52 clipboard write or a
CSI sequence would reach the sysadmin's terminal from a Static; the widgets that
show server text escape control characters but keep line breaks.
"""

from __future__ import annotations

from textual.app import App, ComposeResult

from screens.widgets import FieldError, HintsPanel, Notice

HOSTILE = "535 \x1b]52;c;cm0gLXJmIH4=\x07 \x1b[2J\x9b31m [bold red]x[/] \u202eevil"


class _Panels(App[None]):
    def compose(self) -> ComposeResult:
        yield HintsPanel(id="hints")
        yield Notice(id="notice")
        yield FieldError("smtp.host", id="field")


def _rendered(widget: HintsPanel | Notice | FieldError) -> str:
    return str(widget.render())


async def test_panels_escape_control_characters_and_keep_markup_literal() -> None:
    app = _Panels()
    async with app.run_test() as pilot:
        hints = app.query_one(HintsPanel)
        hints.show_hints(f"Authentication failed: {HOSTILE}", ("first hint\nsecond line",))
        app.query_one(Notice).say(f"Test failed\n{HOSTILE}", "error")
        app.query_one(FieldError).show_message(HOSTILE)
        await pilot.pause()
        for widget in (hints, app.query_one(Notice), app.query_one(FieldError)):
            text = _rendered(widget)
            assert not any(c in text for c in "\x1b\x07\x9b\u202e"), repr(text)
            assert "\\x1b]52;c;" in text  # shown, visibly escaped
            assert "[bold red]x[/]" in text  # markup shown literally
        assert "first hint\n  second line" in _rendered(hints)  # line breaks kept
        assert "Test failed\n535" in _rendered(app.query_one(Notice))


class _Table(App[None]):
    def compose(self) -> ComposeResult:
        from textual.widgets import DataTable

        yield DataTable()


async def test_table_cells_are_plain_text() -> None:
    """A name like "ACME [Ltd]" or a reply with "[/x]" is shown as typed, never parsed."""
    from textual.widgets import DataTable

    from screens.widgets import cell

    app = _Table()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        table.add_columns("name", "reply")
        table.add_row(cell("ACME [Ltd] [/x]"), cell("550 [bold red]no[/] \x1b[2J"), key="r")
        await pilot.pause()
        name, reply = (str(value) for value in table.get_row("r"))
        assert name == "ACME [Ltd] [/x]"
        assert reply == "550 [bold red]no[/] \\x1b[2J"
        rendered = "".join(str(line.text) for line in table.render_lines(table.region))
        assert "\x1b" not in rendered
