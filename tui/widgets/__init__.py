"""Reusable widgets: one-line text, the header, the line-API process view, table syncing."""
