"""Port and socket forwards of an instance: rules, auto-detected guest listeners, health."""
