"""Docker: endpoints, the live container feed from events, actions, logs, stats, platforms."""
