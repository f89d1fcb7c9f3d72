"""Slack: the command grammar, pure Block Kit rendering, the one module that sends, the HTTP server, the manifest."""
