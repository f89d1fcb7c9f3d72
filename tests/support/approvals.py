"""Steps of the end-to-end approval tests: ask for a delete, read the request's state, look for a snapshot."""

from __future__ import annotations

from tests.support.harness import ALICE


def exists(ec2, snapshot_id: str) -> bool:
    return snapshot_id in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def request_delete(bot, ec2, *ids: str, user: str = ALICE) -> dict:
    ack = bot.command(f"/snapshot delete {' '.join(ids)}", user=user)
    assert ack.status == 200
    bot.settle()
    [message] = bot.approval_messages()
    return message


def approval_state(bot) -> str:
    [row] = bot.deps.store.db["approvals"].rows
    return row["state"]
