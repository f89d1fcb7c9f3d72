"""Test support shipped with the bot, as slack_bolt.testing: a fake Slack Web API, signed payloads, a terminal Slack."""
