"""Domain functions for instances: list them, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.aws.models import Instance
from bot.domain.pages import Page

if TYPE_CHECKING:  # the domain takes a gateway, but never imports boto3
    from bot.aws.gateway import Ec2Gateway


def list_instances(gw: Ec2Gateway, region: str, limit: int) -> Page[Instance]:
    insts = sorted(gw.describe_instances(region), key=lambda i: i.launch_time, reverse=True)
    return Page(insts[:limit], len(insts))
