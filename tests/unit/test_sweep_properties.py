"""Property: whatever the mix, a sweep never deletes an AMI in use, a kept one, or anything while frozen.

The retention decision's own properties (kept, snoozed, locked, protected) are
in test_retention_properties.py; "in use" and "frozen" are decided at the
moment of deletion (the sweep asks who launches from each AMI; the gateway
asks the freeze before every delete call), so they are checked here, against
the project's fake EC2 (real wire protocol), end to end through
decide_policy → sweep_plan → execute_sweep.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from unittest import mock

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.fake_ec2 import FakeEc2
from bot.aws.gateway import Ec2Gateway
from bot.config import Config, Policy
from bot.domain.lifecycle import decide_policy, execute_sweep, sweep_plan
from bot.domain.plans import Context

REGION = "us-east-1"
INSTANCE = "i-0123456789abcdef0"
AMIS = Policy(name="images", resource="instance", target_tags={"Backup": "x"}, every=timedelta(hours=1), keep=1)


@settings(max_examples=12, deadline=None)
@given(
    count=st.integers(2, 6),
    used=st.sets(st.integers(0, 5)),
    kept=st.sets(st.integers(0, 5)),
    frozen=st.booleans(),
)
def test_a_sweep_never_deletes_an_ami_in_use_a_kept_one_or_anything_while_frozen(count, used, kept, frozen):
    with (
        FakeEc2() as fake,
        mock.patch.dict(
            os.environ, {"AWS_ENDPOINT_URL": fake.url, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
        ),
    ):
        now = datetime.now(UTC)
        images = []
        for i in range(count):  # oldest first; keep=1 keeps the newest, the rest expire unless protected
            snaps = fake.seed_snapshots(REGION, 1, volumes=["vol-ffffffff"])
            tags = {"chatops:policy": AMIS.name, "chatops:source": INSTANCE, "chatops:managed": "true"}
            if i in kept:
                tags["chatops:keep"] = "true"
            images.append(fake.register_image(REGION, snaps, tags=tags, created=now - timedelta(days=count - i)))
        in_use = {images[i] for i in used if i < count}
        for image in in_use:
            fake.seed_instances(REGION, 1, image_id=image, state="stopped")  # stopped still counts
        gateway = Ec2Gateway(boto3.session.Session(), max_attempts=1, deletion_guard=lambda: "frozen" if frozen else "")
        ctx = Context(gateway, dataclasses.replace(Config(), policies=(AMIS,)), lambda: datetime.now(UTC))
        before_images, before_snaps = fake.ids(REGION, "image"), fake.ids(REGION)

        decisions, _, _ = decide_policy(gateway, ctx.config, AMIS, datetime.now(UTC))
        expired = [d for d in decisions if d.action == "expire"]
        if expired:
            execute_sweep(ctx, sweep_plan(AMIS, expired, 0.05), lambda _: None, sleep=lambda _: None)

        after = fake.ids(REGION, "image")
        protected = in_use | {images[i] for i in kept if i < count}
        assert protected <= after
        if frozen:
            assert after == before_images and fake.ids(REGION) == before_snaps
        else:  # the test can fail the other way too: what may go, went
            # Kept (pinned) AMIs do not count toward `keep`: the newest ordinary one stays; in use is asked later.
            ordinary = [images[i] for i in range(count) if i not in kept]
            deletable = set(ordinary[:-1]) - in_use
            assert not deletable & after
