"""Pane 3: the port forwards of the selected instance — guest → host, source, state, bytes.

Its keys open a forward in the browser, add one, remove one (asks first) and show details.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import DataTable

from envdeck.backend import events as ev
from envdeck.backend.forwards.publishers import publishers
from envdeck.backend.text import visible

from ..formatting import human_bytes, plain, state_text
from ..screens.fields import fields_text
from ..widgets.tablesync import cursor_key
from .base import Pane
from .table import TablePane


class ForwardsPane(TablePane):
    """Forwards of the selected instance."""

    number = 3
    title = "Forwards"
    pane_id = "forwards"
    help_group = "Forwards"
    MUTATING = frozenset(("new_forward", "remove_forward"))
    BINDINGS = [
        Binding("w", "open_forward", "Open in browser", id="forward.open"),
        Binding("F", "new_forward", "New forward", id="forward.new"),
        Binding("d", "remove_forward", "Remove", id="forward.remove"),
        Binding("enter", "details", "Details", show=False, id="forward.details"),
        Binding("slash", "filter", "Filter", show=False, id="forward.filter"),
    ]

    COLUMNS = ("GUEST", "HOST", "SOURCE", "STATE", "CONN", "IN", "OUT")
    PRIORITY = (0, 1, 3, 2, 4, 5, 6)
    note_id = "forwards-empty"

    @property
    def selected(self) -> ev.ForwardStatus | None:
        """The forward under the cursor."""
        key = cursor_key(self.main)
        name = self.ctx.selected_instance
        if key is None or name is None:
            return None
        return self.ctx.model.forwards.get(name, {}).get(key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The note under the rows is about the forward under the cursor."""
        self.ctx.model.dirty.add(self.pane_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table consumes the key itself): details."""
        event.stop()
        self.action_details()

    def render_model(self) -> None:
        """Rows for the selected instance."""
        name = self.ctx.selected_instance
        forwards = self.ctx.model.forwards.get(name or "", {})
        colours = self.ctx.colours
        containers = self.instance_containers(name)
        rows = []
        for guest in sorted(forwards, key=lambda g: (not g.isdigit(), g.zfill(6))):
            f = forwards[guest]
            state = state_text(f.state, colours)
            by = publishers(f.guest, containers)
            rows.append(
                (
                    guest,
                    (
                        plain(f.guest),
                        plain(f.host),
                        plain(f"{f.source} ← {', '.join(by)}" if by else f.source),
                        state,
                        str(f.connections),
                        human_bytes(f.bytes_in),
                        human_bytes(f.bytes_out),
                    ),
                )
            )
        self.show_rows(rows)
        self.set_title(" ".join(p for p in (name or "", self.filter_extra()) if p))
        if name is None:
            self.show_note(Text("Select an instance to see its forwards.", style="italic"))
        elif not rows:
            self.show_note(
                plain(f"{name} has no forwards (its guest listens on no TCP port yet).", "italic")
            )
        else:
            self.show_note(forward_problem(forwards, self.selected))

    def instance_containers(self, name: str | None) -> list[ev.ContainerInfo]:
        """The containers of instance ``name``'s own dockerd (they publish its ports)."""
        endpoint = f"instance:{name}"
        return [c for (e, _), c in self.ctx.model.containers.items() if e == endpoint]

    # --- actions ------------------------------------------------------------------------

    def action_new_forward(self) -> None:
        """Ask for GUEST[:HOST] and add that forward to the selected instance."""
        ask_new_forward(self)

    def action_remove_forward(self) -> None:
        """Remove the selected forward (asks first)."""
        from ..screens.modals import ConfirmScreen

        forward = self.selected
        if forward is None:
            self.warn("No forward selected.")
            return
        backend = self.ctx.backend

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_command(backend.remove_forward(forward.instance, forward.guest))

        self.show_screen(
            ConfirmScreen(
                f"Remove the forward of guest {forward.guest}?",
                f"{forward.guest} → {forward.host} on {forward.instance}",
                "Remove",
            ),
            confirmed,
        )

    def action_open_forward(self) -> None:
        """Open the selected forward's host address in a browser."""
        forward = self.selected
        if forward is None or forward.host.startswith("/"):
            self.warn("Select a TCP forward first.")
            return
        url = f"http://{forward.host}/"
        if self.app.is_web:  # served to a browser (envdeck serve): open it in the user's tab
            self.app.open_url(url)
            self.notify(f"Opened {visible(url)} in a new browser tab", markup=False)
            return
        self._open_url(url)

    @work(thread=True, group="lookups", exit_on_error=False)
    def _open_url(self, url: str) -> None:
        """Open it, or say there is no browser and show the URL to copy."""
        if self.ctx.backend.open_in_browser(url):
            self.app.call_from_thread(self.notify, f"Opened {visible(url)}", markup=False)
        else:
            self.app.call_from_thread(
                self.notify,
                f"No browser found on this machine. Copy the URL:\n{visible(url)}",
                title="open in browser",
                severity="warning",
                timeout=20,
                markup=False,
            )

    def action_details(self) -> None:
        """Enter: everything known about the forward."""
        from ..screens.details import DetailScreen

        forward = self.selected
        if forward is not None:
            by = publishers(forward.guest, self.instance_containers(forward.instance))
            fields = {**asdict(forward), "published_by": ", ".join(by)}
            tabs = [("Details", partial(fields_text, fields, now=self.ctx.clock()))]
            self.show_screen(DetailScreen(f"forward {forward.guest}", tabs))


def forward_problem(
    forwards: dict[str, ev.ForwardStatus], selected: ev.ForwardStatus | None
) -> Text:
    """One line: why the selected forward (else the first that is not active) is not active."""
    ailing = [f for f in forwards.values() if f.reason and f.state != "active"]
    if selected is not None and selected in ailing:
        ailing.insert(0, selected)
    if not ailing:
        return Text("")
    f = ailing[0]
    return plain(f"{f.guest}: {f.state} ({f.reason})", "bold")


def ask_new_forward(pane: Pane) -> None:
    """Prompt for a forward spec and add it to the selected instance (instances and forwards)."""
    from ..screens.modals import PromptScreen

    name = pane.ctx.selected_instance
    if name is None:
        pane.warn("No instance selected.")
        return
    backend = pane.ctx.backend

    def add(spec: str | None) -> None:
        if spec:
            pane.run_command(backend.add_forward(name, spec))

    pane.show_screen(
        PromptScreen(
            f"New forward for {name}",
            "GUEST[:HOST] or GUEST:HOSTIP:HOST, e.g. 8080 or 80:8080",
            validate=spec_error,
        ),
        add,
    )


def spec_error(spec: str) -> str | None:
    """What is wrong with a forward spec (the backend's own parser), None when it is fine."""
    from envdeck.backend.errors import EnvdeckError
    from envdeck.backend.forwards.manager import parse_spec  # (only when one is typed)

    try:
        parse_spec(spec)
    except EnvdeckError as exc:
        return exc.message + (f" — {exc.hint}" if exc.hint else "")
    return None
