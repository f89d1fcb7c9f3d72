"""The executor registry (bot/approvals/registry.py): every kind of plan has an executor, and no executor is unused.

Also: a request stored before the plan vocabulary was unified (issue 10) still
executes and reconciles, and the builders still store plans in that format.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from bot.approvals.archive import archive_snapshots_plan
from bot.approvals.registry import EXECUTORS, UnknownPlanKind, executor_for
from bot.approvals.snapshots import delete_snapshots_plan
from bot.aws.gateway import Ec2Gateway
from bot.config import Config
from bot.domain import amis, lifecycle
from bot.domain.plans import Context, Plan
from bot.flows.approval_flow import EVENT_OF_KIND
from bot.state.store import utcnow
from tests.support.factories import daily_policy, make_instance, make_volume

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
OTHER = "111122223333"


def plan_kinds_in_source() -> dict[str, list[str]]:
    """kind → where: every `Plan(kind="…")` the bot's code constructs (bot/, handlers/, scheduler/)."""
    kinds: dict[str, list[str]] = {}
    for folder in ("bot", "handlers", "scheduler"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Plan"):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                kind = next((k.value for k in node.keywords if k.arg == "kind"), None)
                if kind is None and node.args:
                    kind = node.args[0]
                assert isinstance(kind, ast.Constant) and isinstance(kind.value, str), (
                    f"{where}: give a plan's kind as a literal, so this test can see it"
                )
                kinds.setdefault(kind.value, []).append(where)
    return kinds


def test_every_plan_kind_the_code_builds_has_an_executor_and_no_executor_is_unused():
    built = plan_kinds_in_source()
    assert set(built) == set(EXECUTORS), (
        f"without an executor: {sorted(set(built) - set(EXECUTORS))}; "
        f"executors no builder uses: {sorted(set(EXECUTORS) - set(built))}"
    )


def test_the_builders_produce_exactly_the_registered_kinds(aws, ec2):
    """The same, by running every plan builder (the source scan above would miss a kind built another way)."""
    gw = Ec2Gateway(aws)
    instance = make_instance(ec2, Name="web")
    image_id = ec2.create_image(InstanceId=instance, Name="golden-web")["ImageId"]
    snapshot = ec2.create_snapshot(VolumeId=make_volume(ec2))["SnapshotId"]
    plans = [
        delete_snapshots_plan(gw, REGION, [snapshot], 0.05),
        amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=0.05),
        amis.share_plan(gw, REGION, image_id, OTHER),
        amis.reboot_create_plan(gw, REGION, instance, "web golden", "", "U0ALICE"),
        lifecycle.sweep_plan(daily_policy(), [], 0.05),
        archive_snapshots_plan(gw, REGION, [snapshot], 0.05, 0.0125),
    ]
    assert sorted(p.kind for p in plans) == sorted(EXECUTORS)
    for plan in plans:
        assert executor_for(plan.kind) is EXECUTORS[plan.kind]


def test_every_kind_with_a_digest_event_has_an_executor():
    assert set(EVENT_OF_KIND) <= set(EXECUTORS)


def test_an_unknown_kind_is_a_clear_error():
    with pytest.raises(UnknownPlanKind, match="no executor for plan kind 'delete-everything'; the kinds are "):
        executor_for("delete-everything")


def test_the_registry_cannot_be_changed_at_run_time():
    with pytest.raises(TypeError):
        EXECUTORS["delete-everything"] = EXECUTORS["delete-snapshots"]  # type: ignore[index]


# --- the stored format ----------------------------------------------------------------------


def stored_deregister(image_id: str, name: str, snapshot: dict, instance: str | None) -> dict:
    """A deregister-image plan as the approvals table held it before issue 10 (JSON)."""
    gib = snapshot["size_gib"]
    return {
        "kind": "deregister-image",
        "region": REGION,
        "title": f"Deregister {image_id} ({name}) and delete its snapshots",
        "items": [
            {
                "resource_id": image_id,
                "kind": "image",
                "size_gib": gib,
                "detail": f"\u201c{name}\u201d; backing snapshots deleted: {snapshot['id']} ({gib} GiB)",
                "goes_with": [],
                "region": "",
            },
            {
                "resource_id": snapshot["id"],
                "kind": "snapshot",
                "size_gib": gib,
                "detail": f"backs {image_id}",
                "goes_with": [],
                "region": "",
            },
        ],
        "gib_freed": gib,
        "usd_month_freed": round(gib * 0.05, 2),
        "warnings": [
            f"1 instance(s) were launched from it and keep running, but cannot be relaunched from it: {instance}"
        ]
        if instance
        else [],
        "params": {
            "region": REGION,
            "image_id": image_id,
            "name": name,
            "snapshots": [snapshot],
            "keep_snapshots": False,
            "instances": [instance] if instance else [],
            "pinned": False,
            "pinned_snapshots": [],
        },
    }


def stored_share(image_id: str, name: str, snapshot: dict) -> dict:
    """A share-image plan as the approvals table held it before issue 10 (JSON)."""
    return {
        "kind": "share-image",
        "region": REGION,
        "title": f"Share {image_id} ({name}) with account {OTHER}",
        "items": [
            {
                "resource_id": image_id,
                "kind": "image",
                "size_gib": 0,
                "detail": f"\u201c{name}\u201d: account {OTHER} gets launch permission"
                " (now shared with no other account)",
                "goes_with": [],
                "region": "",
            }
        ],
        "gib_freed": 0,
        "usd_month_freed": 0.0,
        "warnings": [],
        "params": {
            "region": REGION,
            "image_id": image_id,
            "name": name,
            "account_id": OTHER,
            "shared_with": [],
            "snapshots": [snapshot],
        },
    }


def golden_image(ec2) -> tuple[str, dict, str]:
    """(AMI ID, its one backing snapshot as a plan stores it, an instance launched from it and terminated since)."""
    image_id = ec2.create_image(InstanceId=make_instance(ec2), Name="golden-web")["ImageId"]
    [mapping] = [m for m in ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"] if "Ebs" in m]
    snapshot = {
        "id": mapping["Ebs"]["SnapshotId"],
        "size_gib": mapping["Ebs"]["VolumeSize"],
        "device": mapping["DeviceName"],
        "encrypted": False,
    }
    # An instance launched from it when the request was stored, terminated since (one running now refuses it).
    gone = "i-0123456789abcdef0"
    return image_id, snapshot, gone


def test_the_ami_builders_store_plans_in_the_format_stored_before(aws, ec2):
    gw = Ec2Gateway(aws)
    image_id, snapshot, _ = golden_image(ec2)
    deregister = amis.deregister_plan(gw, REGION, image_id, usd_per_gb_month=0.05)
    built, before = (
        json.loads(json.dumps(deregister.to_dict())),
        stored_deregister(image_id, "golden-web", snapshot, None),
    )
    # Since issue 12 each item also says what the Recycle Bin would do with it (moto has none: permanent), and
    # the warnings what could not be read (moto has no snapshot locks); the params, read at execution, are as before.
    for item, old in zip(built["items"], before["items"], strict=True):
        assert item["detail"].startswith(old["detail"] + "; ") and "permanent delete" in item["detail"]
        assert {**item, "detail": old["detail"]} == old
    assert {**built, "items": before["items"], "warnings": []} == before
    share = amis.share_plan(gw, REGION, image_id, OTHER)
    assert json.loads(json.dumps(share.to_dict())) == stored_share(image_id, "golden-web", snapshot)


@pytest.mark.parametrize("optional_keys", ["all", "none"])
def test_a_deregister_request_stored_before_still_executes_and_reconciles(aws, ec2, optional_keys):
    """`optional_keys="none"`: an older row, stored before instances/pinned/pinned_snapshots were recorded."""
    image_id, snapshot, running = golden_image(ec2)
    stored = stored_deregister(image_id, "golden-web", snapshot, running)
    if optional_keys == "none":
        for key in ("instances", "pinned", "pinned_snapshots"):
            del stored["params"][key]
    ctx = Context(Ec2Gateway(aws), Config(), utcnow)
    plan = Plan.from_dict(stored)
    before = executor_for(plan.kind).reconcile(ctx, plan)
    assert [(r.resource_id, r.outcome) for r in before] == [(image_id, "failed"), (snapshot["id"], "failed")]

    seen = []
    results = executor_for(plan.kind).execute(ctx, plan, seen.append)

    assert [(r.resource_id, r.outcome, r.reason) for r in results] == [
        (image_id, "done", "deregistered"),
        (snapshot["id"], "done", "deleted"),
    ]
    assert seen == results
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    after = executor_for(plan.kind).reconcile(ctx, plan)
    assert [(r.resource_id, r.outcome) for r in after] == [(image_id, "done"), (snapshot["id"], "done")]


def test_a_share_request_stored_before_still_executes_and_reconciles(aws, ec2):
    image_id, snapshot, _ = golden_image(ec2)
    ctx = Context(Ec2Gateway(aws), Config(), utcnow)
    plan = Plan.from_dict(stored_share(image_id, "golden-web", snapshot))
    assert [r.outcome for r in executor_for(plan.kind).reconcile(ctx, plan)] == ["failed"]

    [result] = executor_for(plan.kind).execute(ctx, plan, lambda _: None)

    assert (result.resource_id, result.outcome, result.reason) == (image_id, "done", f"shared with {OTHER}")
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": OTHER}]
    assert [r.outcome for r in executor_for(plan.kind).reconcile(ctx, plan)] == ["done"]
