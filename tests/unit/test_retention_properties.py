"""Properties of retention that must hold for every inventory (hypothesis).

What holds, precisely, for any inventory I, policy P and time `now`
(with "ordinary" = in P's scope, unprotected, completed, source known):

* totality: exactly one decision per distinct (region, ID), each with a reason;
* safety: never expired — another policy's or untagged items, the other kind,
  `chatops:keep=true`, AMI-backing snapshots, anything not completed, unknown
  source; every expired item is older than max_age when it is set;
* window: per (region, source) the newest min(keep, #ordinary) ordinary items
  are kept (so at least that many survive);
* GFS: the newest ordinary item of each of the newest N days/weeks/months
  that have one is kept;
* exactness: an ordinary item expires iff it is outside the window, keeps no
  GFS tier and (max_age unset or older than max_age) — checked against a
  plain restatement of the rule, so over-keeping is caught as well;
* determinism: same input → same output; input order and duplicated
  listings do not change the output;
* idempotence at a fixed `now`: deciding again on I minus the expired items
  expires nothing more and keeps exactly the same items (with or without
  max_age and GFS — the window and tiers only move when kept items vanish);
* monotonicity: an item expired at `now` is expired at any later time; a
  more generous policy (higher keep, GFS tier or max_age) never expires an
  item the stricter one keeps.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.config import Policy
from bot.domain.retention import EXPIRE, IGNORE, KEEP_ACTION, KIND_OF, Item, decide

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
POLICY = "p"


@st.composite
def items(draw, index: int, kind: str) -> Item:
    # Biased towards ordinary items of the policy's kind so groups have several
    # members; every protection still shows up often enough.
    kind = draw(st.sampled_from([kind] * 5 + ["snapshot", "image"]))
    tags = {}
    owner = draw(st.sampled_from([POLICY] * 6 + ["q", None]))
    if owner:
        tags["chatops:policy"] = owner
    pin = draw(st.sampled_from([None] * 8 + ["true", "false"]))
    if pin:
        tags["chatops:keep"] = pin
    done = "completed" if kind == "snapshot" else "available"
    return Item(
        id=f"{'snap' if kind == 'snapshot' else 'ami'}-{index:05d}",
        region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
        kind=kind,
        source_id=draw(st.sampled_from(["src-a", "src-a", "src-b", "src-c", ""])),
        # Whole hours over ~100 days: collisions in time happen, as do many per day.
        created=NOW - timedelta(hours=draw(st.integers(-2, 24 * 100))),
        state=draw(st.sampled_from([done] * 8 + ["pending", "error"])),
        size_gib=draw(st.integers(1, 1000)),
        tags=tags,
        backs_image=draw(st.sampled_from([None] * 8 + ["ami-backed"])) if kind == "snapshot" else None,
    )


@st.composite
def cases(draw) -> tuple[list[Item], Policy]:
    """An inventory and a policy; max_age often equals some item's exact age (the boundary)."""
    resource = draw(st.sampled_from(["volume", "instance"]))
    inventory = [draw(items(i, KIND_OF[resource])) for i in range(draw(st.integers(0, 40)))]
    ages = sorted({NOW - i.created for i in inventory if NOW - i.created > timedelta(0)})
    max_age = draw(
        st.none()
        | st.integers(1, 24 * 100).map(lambda h: timedelta(hours=h))
        | (st.sampled_from(ages) if ages else st.none())
    )
    policy = Policy(
        name=POLICY,
        resource=resource,
        target_tags={"Backup": "yes"},
        every=timedelta(hours=12),
        keep=draw(st.integers(1, 6)),
        max_age=max_age,
        keep_daily=draw(st.sampled_from([0, 0, 1, 3, 7])),
        keep_weekly=draw(st.sampled_from([0, 0, 1, 4])),
        keep_monthly=draw(st.sampled_from([0, 0, 1, 3])),
    )
    return inventory, policy


def ordinary(item: Item, policy: Policy) -> bool:
    return (
        item.tags.get("chatops:policy") == policy.name
        and item.kind == KIND_OF[policy.resource]
        and item.tags.get("chatops:keep", "").lower() != "true"
        and not item.backs_image
        and item.state in ("completed", "available")
        and bool(item.source_id)
    )


def by_action(decisions) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {KEEP_ACTION: set(), EXPIRE: set(), IGNORE: set()}
    for d in decisions:
        out[d.action].add(d.item.id)
    return out


def newest_first(group: list[Item]) -> list[Item]:
    return sorted(group, key=lambda i: (-i.created.timestamp(), i.id))


def ordinary_groups(inventory: list[Item], policy: Policy) -> dict[tuple[str, str], list[Item]]:
    groups = defaultdict(list)
    for item in inventory:
        if ordinary(item, policy):
            groups[(item.region, item.source_id)].append(item)
    return {k: newest_first(v) for k, v in groups.items()}


@given(cases())
def test_one_decision_with_a_reason_per_item(case):
    inventory, policy = case
    decisions = decide(inventory, policy, NOW)
    assert sorted(d.item.id for d in decisions) == sorted(i.id for i in inventory)
    assert all(d.reason and d.action in (KEEP_ACTION, EXPIRE, IGNORE) for d in decisions)


@given(cases())
def test_never_expires_protected_or_foreign_items(case):
    inventory, policy = case
    for d in decide(inventory, policy, NOW):
        if d.action == EXPIRE:
            assert ordinary(d.item, policy), d
            if policy.max_age is not None:
                assert NOW - d.item.created > policy.max_age
        if d.item.tags.get("chatops:policy") != policy.name or d.item.kind != KIND_OF[policy.resource]:
            assert d.action == IGNORE


@given(cases())
def test_newest_keep_ordinary_items_per_source_are_kept(case):
    inventory, policy = case
    kept = by_action(decide(inventory, policy, NOW))[KEEP_ACTION]
    for group in ordinary_groups(inventory, policy).values():
        window = group[: policy.keep]
        assert {i.id for i in window} <= kept
        assert len({i.id for i in group} & kept) >= min(policy.keep, len(group))


@given(cases())
def test_gfs_keeps_newest_of_each_recent_period(case):
    inventory, policy = case
    kept = by_action(decide(inventory, policy, NOW))[KEEP_ACTION]
    periods = {
        "keep_daily": lambda t: t.date(),
        "keep_weekly": lambda t: t.isocalendar()[:2],
        "keep_monthly": lambda t: (t.year, t.month),
    }
    for group in ordinary_groups(inventory, policy).values():
        for tier, period in periods.items():
            newest_of: dict = {}
            for item in group:  # newest first: first seen is the newest of its period
                newest_of.setdefault(period(item.created), item)
            recent = sorted(newest_of, reverse=True)[: getattr(policy, tier)]
            assert {newest_of[p].id for p in recent} <= kept


@given(cases(), st.randoms(use_true_random=False))
def test_input_order_and_duplicates_do_not_matter(case, rnd):
    inventory, policy = case
    expected = decide(inventory, policy, NOW)
    assert decide(inventory, policy, NOW) == expected
    shuffled = inventory + rnd.sample(inventory, k=len(inventory) // 3)  # a paginated listing overlapping
    rnd.shuffle(shuffled)
    assert decide(shuffled, policy, NOW) == expected


@given(cases())
def test_idempotent_at_a_fixed_time(case):
    inventory, policy = case
    first = by_action(decide(inventory, policy, NOW))
    remaining = [i for i in inventory if i.id not in first[EXPIRE]]
    second = by_action(decide(remaining, policy, NOW))
    assert second[EXPIRE] == set()
    assert second[KEEP_ACTION] == first[KEEP_ACTION]


@given(cases(), st.integers(0, 24 * 365))
def test_expired_stays_expired_as_time_passes(case, hours_later):
    inventory, policy = case
    now_expired = by_action(decide(inventory, policy, NOW))[EXPIRE]
    later = by_action(decide(inventory, policy, NOW + timedelta(hours=hours_later)))[EXPIRE]
    assert now_expired <= later


@given(
    cases(),
    st.sampled_from(["keep", "keep_daily", "keep_weekly", "keep_monthly", "max_age"]),
    st.integers(1, 10),
)
def test_a_more_generous_policy_never_expires_more(case, knob, more):
    inventory, policy = case
    if knob == "max_age":
        generous = dataclasses.replace(policy, max_age=(policy.max_age or timedelta(0)) + timedelta(days=more))
    else:
        generous = dataclasses.replace(policy, **{knob: getattr(policy, knob) + more})
    strict = by_action(decide(inventory, policy, NOW))[EXPIRE]
    assert by_action(decide(inventory, generous, NOW))[EXPIRE] <= strict


@given(cases())
def test_matches_the_rule_as_written(case):
    """A straightforward restatement of SPEC §5/§7 as an oracle, so over-keeping is caught too."""
    inventory, policy = case
    tiers = {
        "keep_daily": lambda t: t.date(),
        "keep_weekly": lambda t: t.isocalendar()[:2],
        "keep_monthly": lambda t: (t.year, t.month),
    }
    expected = set()
    for group in ordinary_groups(inventory, policy).values():
        keepers = {i.id for i in group[: policy.keep]}
        for tier, period in tiers.items():
            newest_of: dict = {}
            for item in group:
                newest_of.setdefault(period(item.created), item.id)
            keepers |= {newest_of[p] for p in sorted(newest_of, reverse=True)[: getattr(policy, tier)]}
        old = [i for i in group if policy.max_age is None or NOW - i.created > policy.max_age]
        expected |= {i.id for i in old if i.id not in keepers}
    assert by_action(decide(inventory, policy, NOW))[EXPIRE] == expected
