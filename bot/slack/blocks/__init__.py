"""Block Kit builders: pure functions from result objects to Slack messages.

Every builder returns `{"text": …, "blocks": […]}` — `text` is the
notification / screen-reader fallback.  Everything that came from a user or
from AWS goes through `escape()` (so `<!channel>` in a description pings no
one), and every message stays inside Slack's limits: 50 blocks, 3000
characters a section, long lists cut with an "and N more" line.

One module per feature; callers use this package (`blocks.snapshot_list(…)`):

- `common`     escaping, Slack's limits, the block primitives, lists and short formats
- `replies`    errors, the apology, "working on it", where a message went, a watch's end
- `help`       help for every command and verb
- `audit`      `/chatops audit`
- `snapshots`  snapshots, volumes and instances
- `amis`       AMIs: progress, the list, launches, unsharing
- `approvals`  approval requests and their buttons
- `lifecycle`  lifecycle policies, sweep reports and previews
- `freeze`     the kill switch: its banner and announcements
- `keep`       Keep and Snooze menus on sweep requests and digest candidates
- `digest`     the daily digest
- `home`       the App Home tab
- `menus`      each listed item's overflow menu, and the modals its choices open
- `drills`     restore drills: a drill's evidence, `/lifecycle drills`, the digest's drill lines

Rendering is pure: nothing here does I/O or imports boto3, the gateway, the
store, the flows, handlers or the scheduler.
"""

from bot.slack.blocks.amis import ami_list, image_progress, image_unshared, launch_progress
from bot.slack.blocks.approvals import (
    APPROVAL_ITEMS_SHOWN,
    APPROVE_ACTION,
    DENY_ACTION,
    already_decided,
    approval_full_list,
    approval_message,
    approvals_list,
    refusal,
)
from bot.slack.blocks.archive import archive_line, unarchived
from bot.slack.blocks.audit import audit_list
from bot.slack.blocks.common import (
    LIST_LIMIT,
    MAX_BLOCKS,
    MAX_FALLBACK,
    MAX_SECTION,
    Message,
    age,
    context,
    escape,
    header,
    in_account,
    message,
    section,
    tags_text,
)
from bot.slack.blocks.digest import digest_message
from bot.slack.blocks.drills import digest_drill_section, drill_list, drill_result, drill_started
from bot.slack.blocks.freeze import freeze_banner, freeze_banners, frozen_now, not_frozen, thawed_now
from bot.slack.blocks.help import help_message
from bot.slack.blocks.home import MAX_HOME_BLOCKS, HomeData, home_view
from bot.slack.blocks.keep import KEEP_ACTION, SNOOZE_ACTION, SNOOZE_DAYS, kept, parse_item_value, snoozed
from bot.slack.blocks.lifecycle import lifecycle_list, run_progress, sweep_report_message
from bot.slack.blocks.menus import (
    MENU_ACTION,
    MODAL_CALLBACK,
    MenuChoice,
    command_text,
    field_of_error,
    item_modal,
    missing_fields,
    modal_choice,
    modal_values,
    parse_menu_value,
    where,
)
from bot.slack.blocks.recycle_bin import bin_line, recycle_bin_list, undeleted
from bot.slack.blocks.replies import apology, error, posted_elsewhere, unposted, watch_timed_out, watched_gone, working
from bot.slack.blocks.snapshots import (
    instance_list,
    snapshot_list,
    snapshot_progress,
    snapshot_status,
    volume_attached,
    volume_list,
    volume_progress,
)

__all__ = [
    # common: limits, primitives, short formats
    "LIST_LIMIT",
    "MAX_BLOCKS",
    "MAX_FALLBACK",
    "MAX_SECTION",
    "Message",
    "age",
    "context",
    "escape",
    "header",
    "in_account",
    "message",
    "section",
    "tags_text",
    # replies
    "apology",
    "error",
    "posted_elsewhere",
    "unposted",
    "watch_timed_out",
    "watched_gone",
    "working",
    # help and audit
    "audit_list",
    "help_message",
    # snapshots, volumes, instances
    "instance_list",
    "snapshot_list",
    "snapshot_progress",
    "snapshot_status",
    "volume_attached",
    "volume_list",
    "volume_progress",
    # AMIs
    "ami_list",
    "image_progress",
    "image_unshared",
    "launch_progress",
    # approvals
    "APPROVAL_ITEMS_SHOWN",
    "APPROVE_ACTION",
    "DENY_ACTION",
    "already_decided",
    "approval_full_list",
    "approval_message",
    "approvals_list",
    "refusal",
    # keep and snooze
    "KEEP_ACTION",
    "SNOOZE_ACTION",
    "SNOOZE_DAYS",
    "kept",
    "parse_item_value",
    "snoozed",
    # the freeze
    "freeze_banner",
    "freeze_banners",
    "frozen_now",
    "not_frozen",
    "thawed_now",
    # menus and modals: act from the message
    "MENU_ACTION",
    "MODAL_CALLBACK",
    "MenuChoice",
    "command_text",
    "field_of_error",
    "item_modal",
    "missing_fields",
    "modal_choice",
    "modal_values",
    "parse_menu_value",
    "where",
    # App Home
    "MAX_HOME_BLOCKS",
    "HomeData",
    "home_view",
    # lifecycle and digest
    "digest_message",
    "archive_line",
    "unarchived",
    # the Recycle Bin
    "bin_line",
    "recycle_bin_list",
    "undeleted",
    "lifecycle_list",
    "run_progress",
    "sweep_report_message",
    # restore drills
    "digest_drill_section",
    "drill_list",
    "drill_result",
    "drill_started",
]
