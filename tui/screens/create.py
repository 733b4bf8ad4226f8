"""``n``: the new-instance dialog — name (``default``, as ``envdeck up``), template and size.

Each field is checked as it is submitted (the backend's own rules: instance names, templates,
sizes); a wrong one keeps the dialog open with the error under the fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from envdeck.backend.config import TEMPLATES, parse_size
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.store import validate_name

from ..formatting import plain

DEFAULT_NAME = "default"  # (what 'envdeck up' creates)


@dataclass(frozen=True)
class NewInstance:
    """What the dialog asked for; None sizes are the template's defaults."""

    name: str
    template: str
    cpus: int | None = None
    memory_bytes: int | None = None


class CreateScreen(ModalScreen[NewInstance | None]):
    """Name, template, CPUs, memory; Enter in any field creates, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="modal.cancel")]

    def __init__(self, taken: set[str], name: str = DEFAULT_NAME) -> None:
        super().__init__(id="create")
        self.taken = taken
        self.default_name = name

    def compose(self) -> ComposeResult:
        """The fields, the error line, the hint."""
        with Vertical(classes="modal-box prompt"):
            yield Label("New instance (created, then started)", classes="modal-title")
            yield Label("Name")
            yield Input(value=self.default_name, id="create-name")
            yield Label("Template")
            yield Select([(t, t) for t in TEMPLATES], value=TEMPLATES[0], allow_blank=False)
            yield Label("CPUs and memory (empty: the template's)")
            yield Input(placeholder="CPUs, e.g. 2", id="create-cpus")
            yield Input(placeholder="memory, e.g. 1G or 512M", id="create-memory")
            yield Static("", classes="modal-error")
            yield Label("Enter creates · Tab next field · Esc cancels", classes="modal-hint")

    @on(Input.Submitted)
    def _submitted(self) -> None:
        try:
            self.dismiss(self.checked())
        except (EnvdeckError, ValueError) as exc:
            message = exc.message if isinstance(exc, EnvdeckError) else str(exc)
            self.query_one(".modal-error", Static).update(plain(message))

    def checked(self) -> NewInstance:
        """The fields as a NewInstance, or the first error (EnvdeckError or ValueError)."""
        name = validate_name(self.query_one("#create-name", Input).value.strip())
        if name in self.taken:
            raise ValueError(f"instance {name!r} already exists: pick another name")
        template = str(self.query_one(Select).value)
        cpus_text = self.query_one("#create-cpus", Input).value.strip()
        memory_text = self.query_one("#create-memory", Input).value.strip()
        cpus = None
        if cpus_text:
            if not cpus_text.isdigit() or not 1 <= int(cpus_text) <= 64:
                raise ValueError(f"CPUs {cpus_text!r}: use 1 to 64")
            cpus = int(cpus_text)
        memory = parse_size(memory_text) if memory_text else None
        return NewInstance(name, template, cpus, memory)

    def action_cancel(self) -> None:
        """Esc: nothing."""
        self.dismiss(None)
