"""Modal screens: text, confirm, pick, prompt, the tabbed details and the log follow."""
