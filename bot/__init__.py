"""Runtime: command line, app wiring, channel adapters and the Bot API emulator."""
