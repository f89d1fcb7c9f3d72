"""Properties of retention that must hold for every inventory (hypothesis).

What holds, precisely, for any inventory I, policy P, time `now` and time zone `tz`
(with "ordinary" = in P's scope, unprotected, completed, source known):

* totality: exactly one decision per distinct (region, ID), each with a reason;
* safety: never expired — another policy's or untagged items, the other kind,
  `chatops:keep=true` (kept), a snooze still running, a snapshot under a lock
  that has not expired, an AMI with deregistration protection (or in its
  cooldown), AMI-backing snapshots (in use), anything not completed, unknown
  source, an ID listed twice with different details; every expired ordinary
  item is older than max_age when it is set (an AMI in use by instances,
  templates or groups is spared when it would go, and a freeze stops every
  deletion: both are outside `decide`, see tests/e2e/test_e2e_who_uses.py
  and test_e2e_freeze.py);
* window: per (region, source) the newest min(keep, #ordinary) ordinary items
  are kept (so at least that many survive);
* GFS: the newest ordinary item of each of the newest N days/weeks/months
  (in `tz`) that have one is kept;
* exactness: every item's action is the one the rule, restated item by item
  in `expected_action` below, gives it — so over-keeping is caught as well;
* determinism: same input → same output; input order and duplicated
  listings do not change the output;
* idempotence at a fixed `now`: deciding again on I minus the expired items
  expires nothing more and keeps exactly the same items;
* monotonicity: an item expired at `now` is expired at any later time; a
  more generous policy (higher keep, GFS tier or max_age) never expires an
  item the stricter one keeps.

The inventories are drawn so that what must never be deleted is often where
deleting would be wrong: pinned, AMI-backing, pending and conflicting duplicate
items are usually old (outside any keep window), and an instance policy's
leftover snapshots (chatops:ami of a deregistered AMI) appear too.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.aws.models import SnapshotLock
from bot.config import Policy
from bot.domain.retention import EXPIRE, IGNORE, KEEP_ACTION, Item, decide

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
POLICY = "p"
MAKES = {"volume": "snapshot", "instance": "image"}  # what each kind of policy creates (SPEC §7)
DONE = {"snapshot": "completed", "image": "available"}
# UTC, whole-hour offsets either side, half- and quarter-hour offsets, +14 h, DST with a 30-minute shift.
ZONES = [UTC] + [
    ZoneInfo(name)
    for name in (
        "America/Los_Angeles",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Pacific/Kiritimati",
        "America/St_Johns",
        "Australia/Lord_Howe",
    )
]
# What an item is, drawn per item.  Ordinary backups are the most common so that groups have several;
# each protection, and each way of being out of scope, is common too.
ROLES = ["ordinary"] * 8 + [
    "pinned",
    "not-pinned",  # chatops:keep=false: protects nothing
    "backing",
    "unfinished",
    "foreign",
    "other-kind",
    "no-source",
    "ami-tagged",  # an instance policy's leftover; for a volume policy, an ordinary snapshot
    "snoozed",
    "snooze-over",  # a snooze that has ended protects nothing
    "locked",  # a snapshot under a lock (for an instance policy, a leftover that would otherwise go at once)
    "lock-over",  # a lock expired: protects nothing
    "protected",  # an AMI with deregistration protection on, or disabled but cooling down
    "protection-off",
]
PROTECTED = {"pinned", "backing", "unfinished", "no-source", "ami-tagged", "snoozed", "locked", "protected"}
LOCKED = ("governance", "compliance", "compliance-cooloff")
HOURS = 24 * 100  # items span about 100 days


@st.composite
def items(draw, index: int, resource: str) -> Item:
    role = draw(st.sampled_from(ROLES))
    kind = MAKES[resource]
    tags = {"chatops:policy": POLICY}
    state = DONE[kind]
    source = draw(st.sampled_from(["src-a"] * 4 + ["src-b", "src-c"]))  # groups of several, so the window bites
    backs_image = None
    lock, protection = None, ""
    ident = f"{'snap' if kind == 'snapshot' else 'ami'}-{index:05d}"
    soon = NOW + timedelta(hours=draw(st.integers(1, 24 * 30)))
    past = NOW - timedelta(hours=draw(st.integers(0, 24 * 30)))
    if role == "pinned":
        tags["chatops:keep"] = draw(st.sampled_from(["true", "TRUE", " true "]))
    elif role == "not-pinned":
        tags["chatops:keep"] = "false"
    elif role == "backing":
        kind, backs_image = "snapshot", "ami-backing"
        if draw(st.booleans()):
            tags["chatops:ami"] = "ami-backing"
    elif role == "unfinished":
        state = draw(st.sampled_from(["pending", "error", "failed", ""]))
    elif role == "foreign":
        tags = draw(st.sampled_from([{"chatops:policy": "q"}, {}, {"chatops:policy": "q", "chatops:keep": "false"}]))
    elif role == "other-kind":
        kind = "image" if kind == "snapshot" else "snapshot"
        state = DONE[kind]
    elif role == "no-source":
        source = ""
    elif role == "ami-tagged":
        kind, state = "snapshot", "completed"
        tags["chatops:ami"] = "ami-deregistered"
        source = draw(st.sampled_from(["", "src-a"]))
    elif role in ("snoozed", "snooze-over"):
        tags["chatops:snooze-until"] = (soon if role == "snoozed" else past).isoformat()
    elif role in ("locked", "lock-over"):
        kind, state = "snapshot", "completed"
        if resource == "instance":
            tags["chatops:ami"] = "ami-deregistered"  # a leftover: expired at once, but for the lock
        ident = f"snap-{index:05d}"
        state_ = draw(st.sampled_from(LOCKED)) if role == "locked" else draw(st.sampled_from([*LOCKED, "expired"]))
        lock = SnapshotLock(ident, state_, soon if role == "locked" else past)
    elif role in ("protected", "protection-off"):
        kind, state = "image", "available"
        ident = f"ami-{index:05d}"
        until = f"disabled-until {(soon if role == 'protected' else past).isoformat()}"
        protection = draw(
            st.sampled_from(
                ["enabled", "enabled-with-cooldown", until] if role == "protected" else ["", "disabled", until]
            )
        )
    # Protected items are mostly old: outside the keep window, where a missing protection would delete them.
    old = role in PROTECTED and draw(st.integers(0, 3)) > 0
    hours = draw(st.integers(HOURS // 2, HOURS) if old else st.integers(-2, HOURS))  # whole hours: ties happen
    return Item(
        id=ident
        if role in ("locked", "lock-over", "protected", "protection-off")
        else f"{'snap' if kind == 'snapshot' else 'ami'}-{index:05d}",
        region=draw(st.sampled_from(["us-east-1"] * 3 + ["eu-west-1"])),
        kind=kind,
        source_id=source,
        created=NOW - timedelta(hours=hours),
        state=state,
        size_gib=draw(st.integers(1, 1000)),
        tags=tags,
        backs_image=backs_image,
        lock=lock,
        protection=protection,
    )


@st.composite
def duplicates(draw, inventory: list[Item]) -> list[Item]:
    """Some items listed again (a paginated listing overlapping): identical, or with different details."""
    again = []
    for item in draw(st.lists(st.sampled_from(inventory), max_size=4)) if inventory else []:
        change = draw(
            st.sampled_from(
                [{}, {}, {"state": "pending"}, {"size_gib": item.size_gib + 1}, {"backs_image": "ami-other"}]
            )
        )
        again.append(dataclasses.replace(item, **change))
    return again


@st.composite
def cases(draw) -> tuple[list[Item], Policy, tzinfo]:
    """An inventory, a policy and a time zone; max_age often equals some item's exact age (the boundary)."""
    resource = draw(st.sampled_from(["volume", "volume", "instance"]))
    inventory = [draw(items(i, resource)) for i in range(draw(st.integers(0, 40)))]
    inventory += draw(duplicates(inventory))
    ages = sorted({NOW - i.created for i in inventory if NOW - i.created > timedelta(0)})
    max_age = draw(
        st.none()
        | st.integers(1, HOURS).map(lambda h: timedelta(hours=h))
        | (st.sampled_from(ages) if ages else st.none())
    )
    policy = Policy(
        name=POLICY,
        resource=resource,
        target_tags={"Backup": "yes"},
        every=timedelta(hours=12),
        keep=draw(st.sampled_from([1, 1, 2, 2, 3, 6])),
        max_age=max_age,
        keep_daily=draw(st.sampled_from([0, 0, 0, 1, 3, 7])),
        keep_weekly=draw(st.sampled_from([0, 0, 0, 1, 4])),
        keep_monthly=draw(st.sampled_from([0, 0, 0, 1, 3])),
    )
    return inventory, policy, draw(st.sampled_from(ZONES))


# --- the rule, restated item by item (not by sorting and walking, as decide() does) -------------------


def pinned(item: Item) -> bool:
    return item.tags.get("chatops:keep", "").strip().lower() == "true"


def snoozed(item: Item) -> bool:
    raw = item.tags.get("chatops:snooze-until")
    return raw is not None and datetime.fromisoformat(raw) > NOW


def locked(item: Item) -> bool:
    return item.kind == "snapshot" and item.lock is not None and item.lock.state in LOCKED and item.lock.expires > NOW


def protected(item: Item) -> bool:
    if item.kind != "image":
        return False
    if item.protection in ("enabled", "enabled-with-cooldown"):
        return True
    return item.protection.startswith("disabled-until ") and datetime.fromisoformat(item.protection[15:]) > NOW


def listings(inventory: list[Item]) -> dict[tuple[str, str], list[Item]]:
    """Every record listed for each (region, ID)."""
    out: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in inventory:
        out[(item.region, item.id)].append(item)
    return out


def consistent(records: list[Item]) -> bool:
    return all(r == records[0] for r in records)


def screened(item: Item, policy: Policy, same_every_time: bool) -> str | None:
    """SPEC §5/§7 scope and protection: an action, or None for an ordinary backup that the window decides."""
    if item.tags.get("chatops:policy") != policy.name:
        return IGNORE
    leftover = (
        policy.resource == "instance"
        and item.kind == "snapshot"
        and item.backs_image is None
        and bool(item.tags.get("chatops:ami"))
    )
    if item.kind != MAKES[policy.resource] and not leftover:
        return IGNORE
    if not same_every_time or pinned(item) or snoozed(item) or locked(item) or protected(item):
        return KEEP_ACTION
    if item.backs_image or item.state != DONE[item.kind]:
        return KEEP_ACTION
    if leftover:
        return EXPIRE  # restores nothing on its own, whatever its age
    return KEEP_ACTION if not item.source_id else None


def newer(a: Item, b: Item) -> bool:
    """a was taken after b; at the same instant the lower ID counts as the newer (a stable, documented tie-break)."""
    return a.created > b.created or (a.created == b.created and a.id < b.id)


PERIODS = {
    "keep_daily": lambda t: t.date(),
    "keep_weekly": lambda t: tuple(t.isocalendar())[:2],
    "keep_monthly": lambda t: (t.year, t.month),
}


def expected_action(item: Item, ordinary: list[Item], policy: Policy, tz: tzinfo) -> str:
    """An ordinary item: kept if fewer than `keep` of its group are newer, or if it is the newest of its day/
    week/month and fewer than N later periods of its group have a backup; otherwise expired once past max_age."""
    group = [o for o in ordinary if (o.region, o.source_id) == (item.region, item.source_id) and o is not item]
    if sum(newer(o, item) for o in group) < policy.keep:
        return KEEP_ACTION
    for tier, period_of in PERIODS.items():
        mine = period_of(item.created.astimezone(tz))
        periods = [period_of(o.created.astimezone(tz)) for o in group]
        newest_of_its_period = not any(p == mine and newer(o, item) for o, p in zip(group, periods, strict=True))
        if newest_of_its_period and len({p for p in periods if p > mine}) < getattr(policy, tier):
            return KEEP_ACTION
    if policy.max_age is not None and NOW - item.created <= policy.max_age:
        return KEEP_ACTION
    return EXPIRE


def the_rule(inventory: list[Item], policy: Policy, tz: tzinfo) -> dict[str, str]:
    """item ID → the action the rule gives it."""
    verdicts: dict[str, str] = {}
    ordinary: list[Item] = []
    for records in listings(inventory).values():
        verdict = screened(records[0], policy, consistent(records))
        if verdict is None:
            ordinary.append(records[0])
        else:
            verdicts[records[0].id] = verdict
    for item in ordinary:
        verdicts[item.id] = expected_action(item, ordinary, policy, tz)
    return verdicts


def by_action(decisions) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {KEEP_ACTION: set(), EXPIRE: set(), IGNORE: set()}
    for d in decisions:
        out[d.action].add(d.item.id)
    return out


def ordinary_groups(inventory: list[Item], policy: Policy) -> list[list[Item]]:
    """The ordinary items of each (region, source), newest first."""
    groups = defaultdict(list)
    for records in listings(inventory).values():
        if screened(records[0], policy, consistent(records)) is None:
            groups[(records[0].region, records[0].source_id)].append(records[0])
    return [sorted(g, key=lambda i: (-i.created.timestamp(), i.id)) for g in groups.values()]


# --- properties ------------------------------------------------------------------------------


@given(cases())
def test_matches_the_rule_item_by_item(case):
    inventory, policy, tz = case
    assert {d.item.id: d.action for d in decide(inventory, policy, NOW, tz=tz)} == the_rule(inventory, policy, tz)


@given(cases())
def test_one_decision_with_a_reason_per_distinct_item(case):
    inventory, policy, tz = case
    decisions = decide(inventory, policy, NOW, tz=tz)
    assert sorted(d.item.id for d in decisions) == sorted({i.id for i in inventory})
    assert all(d.reason and d.action in (KEEP_ACTION, EXPIRE, IGNORE) for d in decisions)


@given(cases())
def test_never_expires_protected_or_foreign_items(case):
    inventory, policy, tz = case
    listed = listings(inventory)
    for d in decide(inventory, policy, NOW, tz=tz):
        item = d.item
        if item.tags.get("chatops:policy") != policy.name:
            assert d.action == IGNORE, d
        if d.action != EXPIRE:
            continue
        assert not pinned(item) and item.backs_image is None and item.state == DONE[item.kind], d
        assert not snoozed(item) and not locked(item) and not protected(item), d
        assert consistent(listed[(item.region, item.id)]), d
        leftover = policy.resource == "instance" and item.kind == "snapshot" and item.tags.get("chatops:ami")
        if not leftover:
            assert item.kind == MAKES[policy.resource] and item.source_id, d
            if policy.max_age is not None:
                assert NOW - item.created > policy.max_age, d


@given(cases())
def test_newest_keep_ordinary_items_per_source_are_kept(case):
    inventory, policy, tz = case
    kept = by_action(decide(inventory, policy, NOW, tz=tz))[KEEP_ACTION]
    for group in ordinary_groups(inventory, policy):
        assert {i.id for i in group[: policy.keep]} <= kept


@given(cases())
def test_gfs_keeps_newest_of_each_recent_period_in_the_time_zone(case):
    inventory, policy, tz = case
    kept = by_action(decide(inventory, policy, NOW, tz=tz))[KEEP_ACTION]
    for group in ordinary_groups(inventory, policy):
        for tier, period in PERIODS.items():
            newest_of: dict = {}
            for item in group:  # newest first: first seen is the newest of its period
                newest_of.setdefault(period(item.created.astimezone(tz)), item)
            recent = sorted(newest_of, reverse=True)[: getattr(policy, tier)]
            assert {newest_of[p].id for p in recent} <= kept


@given(cases(), st.randoms(use_true_random=False))
def test_input_order_and_duplicates_do_not_matter(case, rnd):
    inventory, policy, tz = case
    expected = decide(inventory, policy, NOW, tz=tz)
    assert decide(inventory, policy, NOW, tz=tz) == expected
    shuffled = inventory + rnd.sample(inventory, k=len(inventory) // 3)  # a paginated listing overlapping
    rnd.shuffle(shuffled)
    assert decide(shuffled, policy, NOW, tz=tz) == expected


@given(cases())
def test_idempotent_at_a_fixed_time(case):
    inventory, policy, tz = case
    first = by_action(decide(inventory, policy, NOW, tz=tz))
    remaining = [i for i in inventory if i.id not in first[EXPIRE]]
    second = by_action(decide(remaining, policy, NOW, tz=tz))
    assert second[EXPIRE] == set()
    assert second[KEEP_ACTION] == first[KEEP_ACTION]


@given(cases(), st.integers(0, 24 * 365))
def test_expired_stays_expired_as_time_passes(case, hours_later):
    inventory, policy, tz = case
    now_expired = by_action(decide(inventory, policy, NOW, tz=tz))[EXPIRE]
    later = by_action(decide(inventory, policy, NOW + timedelta(hours=hours_later), tz=tz))[EXPIRE]
    assert now_expired <= later


@given(
    cases(),
    st.sampled_from(["keep", "keep_daily", "keep_weekly", "keep_monthly", "max_age"]),
    st.integers(1, 10),
)
def test_a_more_generous_policy_never_expires_more(case, knob, more):
    inventory, policy, tz = case
    if knob == "max_age":
        generous = dataclasses.replace(policy, max_age=(policy.max_age or timedelta(0)) + timedelta(days=more))
    else:
        generous = dataclasses.replace(policy, **{knob: getattr(policy, knob) + more})
    strict = by_action(decide(inventory, policy, NOW, tz=tz))[EXPIRE]
    assert by_action(decide(inventory, generous, NOW, tz=tz))[EXPIRE] <= strict
