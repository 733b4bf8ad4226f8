"""envdeck's dashboard (Textual). A client of the backend: it renders events, sends commands.

Module map:
    app          EnvdeckApp: layout, hub subscription, 15 Hz batched refresh, navigation,
                 palette; runs what panes ask for (screens, backend commands, shells)
    context      DashContext: what the app hands the panes (model, backend, colours, selection)
    messages     what panes tell the app (InstanceSelected, ScreenRequested, ActionRequested, ...)
    model        events folded into state (dispatch by event class); marks dirty panes
    panes/       the five panes, each with its keys and actions (base: the common Pane)
    widgets/     header, line, procview (line-API process list), tablesync
    screens/     modals (text, confirm, pick, prompt), details (tabs), logs (container logs)
    keys         binding ids, keymap display, the grouped help; settings: config.yaml part
    proctree     the process pane's pure logic; hostinfo, formatting: small helpers
The backend commands are the typed envdeck.backend.api.Backend (LiveBackend by default).
"""
