"""``python -m envdeck.backend.agent NAME``: what ``envdeck start`` spawns (and how a running
agent is recognised in the process table, so the module path must stay)."""

import sys

from envdeck.backend.agent.entry import main

sys.exit(main())
