"""The five panes of the dashboard, each with its keys and what they do."""
