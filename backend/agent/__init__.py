"""The per-instance agent daemon: supervises QEMU, serves agent.sock, owns SSH and forwards."""
