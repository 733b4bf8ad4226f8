"""QEMU itself: argv, accelerator choice, QMP, the serial console, boot stages, provisioning."""
