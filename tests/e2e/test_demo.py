"""`python -m bot demo` end to end: a real process, its console driven through stdin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
VOLUME_ID = re.compile(r"vol-[0-9a-f]{17}")
SNAPSHOT_ID = re.compile(r"snap-[0-9a-f]{17}")


class Demo:
    """The demo process: read its intro, then type lines into it."""

    def __init__(self, cwd: Path, timeout: float = 120):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "CHATOPS_")) and k not in ("AWS_ENDPOINT_URL", "AWS_PROFILE")
        }
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        # A watchdog rather than a timed assertion: a hung demo fails the test instead of hanging CI.
        self.watchdog = threading.Timer(timeout, self.proc.kill)
        self.watchdog.start()

    def read_intro(self) -> str:
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if "quit" in line and "leave" in line:
                return "".join(lines)
        raise AssertionError(
            f"the demo ended before its intro finished: {''.join(lines)!r} {self.proc.stderr.read()!r}"
        )

    def finish(self, *lines: str) -> tuple[int, str, str]:
        """Type `lines`, close stdin (EOF) and wait for the process to exit."""
        out, err = self.proc.communicate("".join(f"{line}\n" for line in lines))
        self.watchdog.cancel()
        return self.proc.returncode, out, err

    def close(self) -> None:
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def demo(tmp_path):
    d = Demo(tmp_path)
    yield d
    d.close()


def intro_volume(intro: str) -> str:
    volumes_line = next(line for line in intro.splitlines() if line.startswith("Volumes:"))
    match = re.search(r"db-data `(vol-[0-9a-f]{17})`", volumes_line)
    assert match, volumes_line
    return match.group(1)


def test_demo_creates_a_snapshot_and_lists_it(demo):
    intro = demo.read_intro()
    volume_id = intro_volume(intro)
    assert f"/snapshot {volume_id} Backup of my EBS volume" in intro

    code, out, err = demo.finish(f"/snapshot {volume_id} Backup of my EBS volume", "/snapshot list")

    assert code == 0, err
    create, _, listing = out.partition("> /snapshot list")
    assert listing, out
    done = re.search(rf"Snapshot `({SNAPSHOT_ID.pattern})` of `{volume_id}` (completed|in progress)", create)
    assert done, create
    snapshot_id = done.group(1)
    assert "Backup of my EBS volume" in create
    listed = next((line for line in listing.splitlines() if snapshot_id in line), None)
    assert listed is not None, listing
    assert volume_id in listed and "Backup of my EBS volume" in listed
    assert "Traceback" not in out + err


def test_demo_quits_with_zero(demo):
    demo.read_intro()
    code, out, err = demo.finish("/chatops help", "quit", "/snapshot list")
    assert code == 0, err
    assert "/snapshot" in out and "Snapshots in" not in out  # nothing after `quit` ran
    assert "Traceback" not in out + err


def test_demo_refuses_a_malformed_id_with_usage(demo):
    demo.read_intro()
    code, out, err = demo.finish("/snapshot vol-123 oops")
    assert code == 0, err
    assert "`vol-123` is not a valid volume ID" in out and "Usage: /snapshot vol-…" in out
    assert not SNAPSHOT_ID.search(out.partition("> /snapshot vol-123")[2])


def test_demo_reaches_a_second_account_through_assume_role(demo):
    intro = demo.read_intro()
    prod_line = next(line for line in intro.splitlines() if "account=prod" in line)
    prod_volume = re.search(r"orders-db `(vol-[0-9a-f]{17})`", prod_line)
    assert prod_volume, prod_line
    own_volume = intro_volume(intro)

    code, out, err = demo.finish("/volume list account=prod")

    assert code == 0, err
    listing = out.partition("> /volume list account=prod")[2]
    assert prod_volume.group(1) in listing and own_volume not in listing
    assert "🏢 account *prod*" in listing
    assert "Traceback" not in out + err


def test_demo_freezes_and_thaws_deletions_as_an_approver(demo):
    demo.read_intro()
    code, out, err = demo.finish(
        "/lifecycle freeze nope", "as bob", "/lifecycle freeze change window until=1h", "/lifecycle thaw"
    )
    assert code == 0, err
    refused, _, rest = out.partition("> as bob")
    assert "only an approver can freeze deletions" in refused
    frozen = rest.partition("> /lifecycle thaw")[0]
    assert "· bot" in frozen and "Deletions frozen" in frozen and "change window" in frozen and "until" in frozen
    assert "Deletions thawed" in rest.partition("> /lifecycle thaw")[2]
    assert "Traceback" not in out + err


def test_demo_opens_the_home_tab_and_approves_from_it(demo):
    """`home` prints the App Home view; its Approve, pressed as bob, deletes once and redraws the tab."""
    intro = demo.read_intro()
    assert "home" in intro

    def until(line: str, marker: str) -> str:
        demo.proc.stdin.write(f"{line}\n")
        demo.proc.stdin.flush()
        seen = []
        for out_line in demo.proc.stdout:
            seen.append(out_line)
            if marker in out_line:
                return "".join(seen)
        raise AssertionError(f"no {marker!r} after {line!r}: {''.join(seen)!r}")

    # A request to approve: delete the web-logs weekly snapshot, found with `/snapshot list` first.
    listing = until("/snapshot list", "web logs weekly")
    [snap] = SNAPSHOT_ID.findall(listing.splitlines()[-1])
    until(f"/snapshot delete {snap}", "Request `req-")
    until("as bob", "You are now bob")
    home = until("home", "Updated ")
    assert "App Home · bob" in home and "Waiting for an approver (1)" in home and snap in home
    [approve] = re.findall(r"\[(\d+)\] !Approve", home)  # the tab's own button
    code, out, err = demo.finish(f"click {approve}")
    assert code == 0, err
    assert "Approved by @bob — done" in out and "You approved" in out and "Waiting for an approver (0)" in out
    assert "Traceback" not in out + err


def test_demo_runs_a_restore_drill_of_a_snapshot_and_an_ami(demo):
    intro = demo.read_intro()
    snap = re.search(r"/snapshot drill (snap-[0-9a-f]{17})", intro)
    ami = re.search(r"/ami drill (ami-[0-9a-f]{17})", intro)
    assert snap and ami, intro

    code, out, err = demo.finish(f"/snapshot drill {snap.group(1)}", f"/ami drill {ami.group(1)}", "/lifecycle drills")

    assert code == 0, err
    snapshot_drill, _, rest = out.partition(f"> /ami drill {ami.group(1)}")
    ami_drill, _, listing = rest.partition("> /lifecycle drills")
    assert "Restore drill ok" in snapshot_drill and "available in" in snapshot_drill, snapshot_drill
    assert "Restore drill ok" in ami_drill and "status checks passed" in ami_drill, ami_drill
    assert snap.group(1) in listing and ami.group(1) in listing
    assert "Traceback" not in out + err


def test_demo_restores_a_snapshot_from_its_menu_through_the_form(demo):
    """`click N` on a menu option opens the form; `submit` with a bad field keeps it open, a good one restores."""
    demo.read_intro()
    code, out, err = demo.finish(
        "/snapshot list", "click 2", "submit az=us-east-1b device=/dev/bad", "submit az=us-east-1b"
    )
    assert code == 0, err
    listing, _, rest = out.partition("> click 2")
    assert "⋮ [1] Status   [2] Restore…   [3] Copy…   [4] Restore drill   [5] Delete" in listing
    form, _, rest = rest.partition("> submit az=us-east-1b device=/dev/bad")
    assert "form · Restore snapshot" in form and "✎ az= Availability zone: one of us-east-1a" in form
    refused, _, done = rest.partition("> submit az=us-east-1b")
    assert "✎ device:" in refused and "the form stays open" in refused
    assert "the form closes" in done and "restored from" in done and "in us-east-1b" in done
    assert "Traceback" not in out + err


def test_demo_refuses_to_deregister_an_ami_in_use_naming_its_users(demo):
    intro = demo.read_intro()
    [ami] = re.findall(r"/ami deregister (ami-[0-9a-f]{17})", intro)
    code, out, err = demo.finish(f"/ami deregister {ami}", "/ami list")
    assert code == 0, err
    refused = out.partition("> /ami list")[0]
    assert "in use" in refused and "i-" in refused and "Approve" not in refused
    assert ami in out.partition("> /ami list")[2]  # still there
    assert "Traceback" not in out + err
