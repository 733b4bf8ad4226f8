"""Processes on the host and in guests: scans, trees, filters, emulation, binfmt_misc, signals."""
