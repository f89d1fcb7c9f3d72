"""How `python -m bot sweep` spreads a fleet over processes: how many, and which accounts each gets."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.__main__ import main
from bot.process.sweep_processes import AUTO, process_count, shares


def test_auto_is_one_process_per_core_but_never_more_than_the_accounts():
    assert process_count(AUTO, accounts=20, cpus=2) == 2
    assert process_count(AUTO, accounts=20, cpus=8) == 8
    assert process_count(AUTO, accounts=3, cpus=8) == 3
    assert process_count(AUTO, accounts=1, cpus=8) == 1  # one account: this process, no child


def test_a_number_is_taken_as_asked_up_to_the_accounts():
    assert process_count(4, accounts=20, cpus=2) == 4
    assert process_count(1, accounts=20, cpus=8) == 1
    assert process_count(6, accounts=2, cpus=8) == 2
    with pytest.raises(ValueError):
        process_count(0, accounts=2)


def test_accounts_are_dealt_round_robin():
    assert shares(["own", "a1", "a2", "a3", "a4"], 2) == [["own", "a2", "a4"], ["a1", "a3"]]
    assert shares(["own", "a1"], 5) == [["own"], ["a1"]]


@given(st.lists(st.text(min_size=1), min_size=1, max_size=60, unique=True), st.integers(1, 16))
def test_every_account_is_in_exactly_one_share_and_shares_differ_by_at_most_one(accounts, processes):
    dealt = shares(accounts, processes)

    assert sorted(a for share in dealt for a in share) == sorted(accounts)
    assert all(dealt) and len(dealt) == min(processes, len(accounts))
    assert max(map(len, dealt)) - min(map(len, dealt)) <= 1


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_process_count_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--processes", bad])

    assert exit_.value.code == 2
    assert "a number of processes (1 or more) or auto" in capsys.readouterr().err


def test_auto_counts_the_cores_this_process_may_use():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    allowed = len(os.sched_getaffinity(0))
    assert process_count(AUTO, accounts=1000) == allowed
