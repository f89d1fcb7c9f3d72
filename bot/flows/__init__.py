"""Workflows: approval requests and their execution, policy runs and the digest; domain + store + Slack together."""
