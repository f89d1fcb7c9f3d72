"""The bot's state: one SQLite store (the only module that writes it) and the liveness of the processes sharing it."""
