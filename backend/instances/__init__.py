"""Instances: the API the CLI and TUI call, the files an instance needs, the dashboard feed."""
