"""The rules: snapshots, volumes, instances, AMIs, retention, lifecycle runs and sweeps, the digest, costs, tags.

Plain functions over an injected gateway; no Slack, no SQLite, and no boto3 at import.
"""
