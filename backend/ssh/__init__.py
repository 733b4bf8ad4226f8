"""SSH to guests: asyncssh client, keys and the pinned host key, the OpenSSH master and splice data path."""
