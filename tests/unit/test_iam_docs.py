"""Docs that cannot drift: every AWS API the gateway calls is in the README's IAM list."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def gateway_operations() -> set[str]:
    source = (ROOT / "bot" / "aws" / "gateway.py").read_text()
    calls = set(re.findall(r"\.client\([^)]*\)\.([a-z_]+)\(", source))
    calls |= set(re.findall(r'_pages\(\s*region,\s*"([a-z_]+)"', source))
    calls |= set(re.findall(r'get_paginator\("([a-z_]+)"\)', source))
    calls |= set(re.findall(r"\b(?:ec2|autoscaling|rbin)\.([a-z_]+)\(", source)) - {"get_paginator"}
    return {"".join(part.title() for part in name.split("_")) for name in calls}


def test_the_gateway_is_found_calling_aws():
    ops = gateway_operations()
    assert {"DescribeSnapshots", "DeleteSnapshot", "GetCallerIdentity", "DescribeLaunchTemplates"} <= ops
    assert {"DescribeAutoScalingGroups", "DescribeLaunchConfigurations", "DescribeLaunchTemplateVersions"} <= ops
    assert {"ListRules", "GetRule", "DescribeLockedSnapshots", "RestoreSnapshotFromRecycleBin"} <= ops


def test_every_gateway_call_is_in_the_readme_iam_list():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### IAM permissions", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(?:ec2|sts|autoscaling|rbin):([A-Za-z]+)`", section))
    assert gateway_operations() - listed == set()
