"""envdeck's dashboard (Textual). A client of the backend: it renders events, sends commands.

Module map:
    app          EnvdeckApp: layout, hub subscription, 15 Hz batched refresh, navigation, palette
    commands     what the action keys do (start/stop, delete, signal, shell, x, Enter, forwards)
    actions      the one seam to backend commands (lazy imports, blocking calls in threads)
    live         the live sources, found lazily (also used by `envdeck record`)
    model        events folded into state; marks dirty panes
    pane*        the five panes (instances, containers, forwards, processes, serial)
    procview     line-API process list (renders only visible rows); proctree: its pure logic
    screens, detailscreen, logscreen   modals (help/text, confirm, pick, prompt, details, logs)
    keys         binding ids, keymap display, the grouped help; settings: config.yaml part
    header, line, hostinfo, formatting, tablesync, serialsearch   small helpers
"""
