"""Modal screens: help, confirm (Cancel preselected), signal picker, command menu, text views.

Titles, questions, details and option labels often quote data (a process's command line, a
container's name): they are shown as plain text, control characters visible, never as markup.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Callable, Iterable

from rich.console import RenderableType
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..formatting import plain

SIGNALS = ["TERM", "INT", "HUP", "KILL", "STOP", "CONT", "USR1", "USR2", "QUIT"]


class TextScreen(ModalScreen[None]):
    """A scrollable text (help, details, literal commands, search results). Esc/q closes."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="modal.close"),
        Binding("q", "dismiss", "Close", show=False, id="modal.close_q"),
    ]

    def __init__(self, title: str, body: RenderableType, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        """Title, body, hint."""
        with Vertical(classes="modal-box"):
            yield Label(plain(self.title_text), classes="modal-title")
            with VerticalScroll(classes="modal-scroll"):
                yield Static(self.body, classes="modal-body")
            yield Label("Esc closes", classes="modal-hint")


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no with Cancel focused: Enter on arrival cancels; ``y`` confirms, ``n``/Esc cancel,
    ←/→ move between the buttons."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel"),
        Binding("q", "cancel", "Cancel", show=False, id="modal.close_q"),
        Binding("y", "confirm", "Yes", show=False, id="confirm.yes"),
        Binding("n", "cancel", "No", show=False, id="confirm.no"),
        Binding("left", "app.focus_previous", "Previous button", show=False, id="confirm.left"),
        Binding("right", "app.focus_next", "Next button", show=False, id="confirm.right"),
    ]

    def __init__(self, question: str, detail: str = "", confirm_label: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        """Question, detail, buttons (Cancel first and focused)."""
        with Vertical(classes="modal-box confirm"):
            yield Label(plain(self.question), classes="modal-title")
            if self.detail:
                yield Static(plain(self.detail), classes="modal-body")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self.confirm_label, id="confirm", variant="error")

    def on_mount(self) -> None:
        """Cancel is preselected."""
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        """Esc, n: no."""
        self.dismiss(False)

    def action_confirm(self) -> None:
        """y: yes."""
        self.dismiss(True)


class PickScreen(ModalScreen[str | None]):
    """Pick one option (signal, command of the ``x`` menu); Esc returns None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel"),
        Binding("q", "cancel", "Cancel", show=False, id="modal.close_q"),
    ]

    def __init__(self, title: str, options: list[tuple[str, str]], hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.options = options  # (id, label)
        self.hint = hint

    def compose(self) -> ComposeResult:
        """Title, options, hint."""
        with Vertical(classes="modal-box"):
            yield Label(plain(self.title_text), classes="modal-title")
            yield OptionList(*[Option(plain(label), id=oid) for oid, label in self.options])
            if self.hint:
                yield Label(self.hint, classes="modal-hint")

    def on_mount(self) -> None:
        """First option highlighted."""
        for options in self.query(OptionList):  # (none if the app is already shutting down)
            options.highlighted = 0
            options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Esc: nothing picked."""
        self.dismiss(None)


def signal_options(names: Iterable[str] = SIGNALS) -> list[tuple[str, str]]:
    """(number, 'TERM (15)') for the picker, TERM first (``names``: the ones on offer)."""
    out = []
    for name in names:
        number = int(getattr(_signal, "SIG" + name))
        out.append((str(number), f"{name} ({number})"))
    return out


class PromptScreen(ModalScreen[str | None]):
    """One line of input (``:`` command mode, a new forward). ``validate`` returns what is wrong
    with a value (None when it is fine): the dialog then stays open with the error under the
    field."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="modal.cancel")]  # (q types a q)

    def __init__(
        self,
        prompt: str,
        placeholder: str = "",
        validate: Callable[[str], str | None] | None = None,
        value: str = "",
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.placeholder = placeholder
        self.validate = validate
        self.value = value

    def compose(self) -> ComposeResult:
        """Prompt, input, the error line (empty until a value is refused)."""
        with Vertical(classes="modal-box prompt"):
            yield Label(plain(self.prompt), classes="modal-title")
            yield Input(value=self.value, placeholder=self.placeholder)
            yield Static("", classes="modal-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        error = self.validate(value) if self.validate is not None and value else None
        if error:
            self.query_one(".modal-error", Static).update(plain(error))
            return
        self.dismiss(value)

    @on(Input.Changed)
    def _changed(self, _event: Input.Changed) -> None:
        self.query_one(".modal-error", Static).update("")

    def action_cancel(self) -> None:
        """Esc: nothing."""
        self.dismiss(None)
