"""End to end: "who uses this?" An AMI something still launches from is never deregistered, by hand or by sweep."""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.testing.fakeslack import message_text
from tests.support.factories import base_config, daily_policy, make_instance
from tests.support.harness import ALICE

pytestmark = pytest.mark.e2e


def golden(ec2, name: str = "golden-1") -> str:
    return ec2.create_image(InstanceId=make_instance(ec2, Name="web-1"), Name=name, NoReboot=True)["ImageId"]


def image_ids(ec2) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def refused(bot, image: str) -> str:
    bot.command(f"/ami deregister {image}", user=ALICE)
    bot.settle()
    assert bot.approval_messages() == []  # refused up front: nothing for an approver to approve
    return bot.responses()[-1]


def test_an_ami_only_a_launch_template_uses_is_refused_naming_the_template(bot, ec2):
    image = golden(ec2)
    template = ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]

    answer = refused(bot, image)

    assert f"{image} is in use by launch template {template} (web $Default/$Latest); nothing was done" in answer
    assert image in image_ids(ec2)


def test_an_ami_an_auto_scaling_group_launches_through_a_launch_configuration_is_refused(bot, ec2, aws):
    image = golden(ec2)
    autoscaling = aws.client("autoscaling", region_name="us-east-1")
    autoscaling.create_launch_configuration(LaunchConfigurationName="web-lc", ImageId=image, InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchConfigurationName="web-lc",
        MinSize=0,
        MaxSize=0,
        AvailabilityZones=["us-east-1a"],
    )

    answer = refused(bot, image)

    assert "Auto Scaling group web-asg (launch configuration web-lc)" in answer
    assert image in image_ids(ec2)


def test_a_group_on_an_older_template_version_keeps_that_versions_ami(bot, ec2, aws):
    old, new = golden(ec2, "golden-old"), golden(ec2, "golden-new")
    template = ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": old, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template, LaunchTemplateData={"ImageId": new})
    ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion="2")
    aws.client("autoscaling", region_name="us-east-1").create_auto_scaling_group(
        AutoScalingGroupName="pinned",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=0,
        MaxSize=0,
        AvailabilityZones=["us-east-1a"],
    )

    answer = refused(bot, old)  # no template version is $Default or $Latest on it: the group's pinned version is
    assert f"Auto Scaling group pinned (launch template {template} 1)" in answer


def test_a_sweep_spares_an_expired_ami_a_launch_template_uses_and_says_why(make_bot, ec2, tmp_path):
    policy = daily_policy(resource="instance", target_tags={"Backup": "daily"}, keep=1, on_expired="delete")
    bot = make_bot(dataclasses.replace(base_config(tmp_path), policies=(policy,)))
    make_instance(ec2, Name="db-1", Backup="daily")
    bot.command("/lifecycle run daily-db")
    bot.settle()
    [first] = image_ids(ec2)
    ec2.create_launch_template(LaunchTemplateName="db", LaunchTemplateData={"ImageId": first})
    time.sleep(1.1)  # moto stamps CreationDate to the second; retention orders by it

    bot.command("/lifecycle run daily-db")  # keep=1: the first AMI is expired, but a launch template uses it
    bot.settle()

    assert first in image_ids(ec2) and len(image_ids(ec2)) == 2
    report = message_text([m for m in bot.posted() if "daily-db" in message_text(m)][-1])
    assert f"`{first}`" in report and "in use by launch template" in report
