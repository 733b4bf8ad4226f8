"""The key footer: Textual's, recomposed only when the keys it shows change."""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    """Textual's footer recomposes (every key a widget) on each bindings signal; the dashboard
    sends several with the same keys while it starts (~50 ms each on a small machine, before
    the first rows). This one recomposes once per change of what it shows, and its keys are
    styled once, not twice."""

    def __init__(self, *, compact: bool = False) -> None:
        super().__init__(compact=compact)
        self._composed: Hashable = None  # what the keys on show were composed from
        self._queued = False

    def compose(self) -> ComposeResult:
        """Textual's keys, noting what they show; each already has the class its ``compact``
        sets when mounted (set then, it restyles every key once more)."""
        self._composed = self._keys(self.screen) if self._bindings_ready else None
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                widget.set_class(self.compact, "-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        """Recompose after the next refresh, unless one is queued or the keys are the same."""
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if self._queued or self._keys(screen) == self._composed:
            return
        self._queued = True
        self.call_after_refresh(self._recompose)

    async def _recompose(self) -> None:
        self._queued = False
        await self.recompose()

    @staticmethod
    def _keys(screen: Screen) -> Hashable:
        return tuple(
            (key, binding.key_display, binding.action, binding.description, binding.show)
            + (enabled, tooltip)
            for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items()
        )
