"""SSH to guests: the asyncssh client, keys and the pinned host key, the OpenSSH master and
its splice data path."""
