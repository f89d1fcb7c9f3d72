"""The small formats every builder shares: ID lists, tags, states, and the account a message is about."""

from __future__ import annotations

from bot.slack.blocks.common import MAX_BLOCKS, MAX_FALLBACK, context, id_list, in_account, message, state, tags_text


def test_an_id_list_shows_the_first_ids_then_how_many_more():
    ids = [f"snap-{n}" for n in range(13)]
    assert id_list(ids[:2]) == "`snap-0`, `snap-1`"
    assert id_list(ids[:10]) == ", ".join(f"`snap-{n}`" for n in range(10))  # exactly the limit: no "0 more"
    assert id_list(ids) == ", ".join(f"`snap-{n}`" for n in range(10)) + " and 3 more"
    assert id_list(ids, limit=12) == ", ".join(f"`snap-{n}`" for n in range(12)) + " and 1 more"
    assert id_list(["<!here>"]) == "`&lt;!here&gt;`"


def test_tags_are_sorted_pairs_escaped():
    assert tags_text({}) == "_none_"
    assert tags_text({"b": "2", "a": "<@U1>"}) == "`a=&lt;@U1&gt;`, `b=2`"


def test_a_state_has_its_icon_and_an_unknown_one_a_question_mark():
    assert state("completed") == ":white_check_mark: completed"
    assert state("pending") == ":hourglass_flowing_sand: pending"
    assert state("<!channel>") == ":grey_question: &lt;!channel&gt;"


def test_a_message_names_its_account_first_only_when_there_is_one():
    msg = message("Snapshots: 2", [context("a"), context("b")])
    assert in_account(msg, "") is msg
    named = in_account(msg, "prod")
    assert named["text"] == "[prod] Snapshots: 2"
    assert named["blocks"][0] == context(":office: account *prod*")
    assert named["blocks"][1:] == msg["blocks"]
    hostile = in_account(msg, "<!here>")
    assert hostile["blocks"][0] == context(":office: account *&lt;!here&gt;*")
    assert hostile["text"].startswith("[&lt;!here&gt;] ")  # the fallback text is mrkdwn in notifications too


def test_the_account_line_is_never_left_out_of_a_full_message():
    full = message("x" * MAX_FALLBACK, [context(str(n)) for n in range(MAX_BLOCKS)])
    named = in_account(full, "prod")
    assert len(named["blocks"]) == MAX_BLOCKS and named["blocks"][0] == context(":office: account *prod*")
    assert named["blocks"][-1] == context(str(MAX_BLOCKS - 2))
    assert named["text"].startswith("[prod] xxx") and len(named["text"]) <= MAX_FALLBACK
