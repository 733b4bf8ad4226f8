"""The per-instance agent daemon: supervises QEMU, serves agent.sock, owns SSH and forwards.

Start at :mod:`daemon` (the wiring and ``main``). The agent's parts: :mod:`state` (status,
boot stages, messages, the event fan-out), :mod:`console` (the serial console), :mod:`machine`
(QEMU launch/adopt/exit/pause/resume/stop, with :mod:`exits` for why it ended), :mod:`readiness`
(boot stages to ready: SSH, provisioning, auto-forwards), :mod:`server` (the socket) and
:mod:`commands` (what each request does); :mod:`guestside` builds the SSH-side parts once QEMU
runs. The wire form and its commands are declared in
:mod:`protocol`; :mod:`client` is the typed client everyone else uses.
"""
