"""The AWS gateway: the one module that calls boto3.

One boto3 session; one EC2 client per region, created lazily and cached;
botocore retries in standard mode (throttling and 5xx are retried with
exponential backoff and jitter); every Describe* paginated with
MaxResults=1000 unless it is asked for explicit IDs (EC2 refuses MaxResults
beside IDs); results come back as small frozen dataclasses; AWS errors come
back as the bot's own exceptions (bot.errors) with a friendly message.

Every call is counted by action in `calls` (attempts, retries included): the
tests and benchmarks read it to prove at-most-once and to compare against the
EC2 API floor.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.parsers
import botocore.session
import botocore.utils

from bot import errors
from bot.aws.models import (
    BinEntry,
    Image,
    ImageUse,
    Instance,
    InstanceStatus,
    RetentionRule,
    Snapshot,
    SnapshotLock,
    Volume,
)
from bot.aws.pacing import Pacer
from bot.config import Account

log = logging.getLogger(__name__)

PAGE_SIZE = 1000

# The codes of an empty request bucket (not SnapshotCreationPerVolumeRateExceeded: a per-volume limit).
_BUCKET_EMPTY = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})

# Error code → (exception class, hint).  Codes are matched exactly first, then
# by suffix, so `InvalidSnapshot.NotFound` and friends all land on NotFound.
_EXACT = {
    "UnauthorizedOperation": errors.AccessDenied,
    "AccessDenied": errors.AccessDenied,
    "AccessDeniedException": errors.AccessDenied,
    "AuthFailure": errors.AccessDenied,
    "InvalidClientTokenId": errors.AccessDenied,
    "OptInRequired": errors.AccessDenied,
    "RequestLimitExceeded": errors.Throttled,
    "Throttling": errors.Throttled,
    "ThrottlingException": errors.Throttled,
    "SnapshotCreationPerVolumeRateExceeded": errors.Throttled,
    "InvalidSnapshot.InUse": errors.Conflict,
    "VolumeInUse": errors.Conflict,
    "IncorrectState": errors.Conflict,
    "IncorrectInstanceState": errors.Conflict,
    "InvalidVolume.ZoneMismatch": errors.InvalidParameter,
    "InvalidAMIName.Duplicate": errors.Conflict,
    "InvalidParameterValue": errors.InvalidParameter,
    "InvalidParameter": errors.InvalidParameter,
    "InvalidParameterCombination": errors.InvalidParameter,
    "MissingParameter": errors.InvalidParameter,
    # EC2's own trouble (500/503), left after botocore's retries: transient, so "try again".
    "InternalError": errors.AwsUnavailable,
    "InternalFailure": errors.AwsUnavailable,
    "ServiceUnavailable": errors.AwsUnavailable,
    "Unavailable": errors.AwsUnavailable,
    "InvalidAMIName.Malformed": errors.InvalidParameter,
    "InvalidKeyPair.NotFound": errors.InvalidParameter,
}
_HINTS = {
    errors.AccessDenied: "Check the bot's IAM policy (see README, *IAM permissions*).",
    errors.Throttled: "AWS is rate-limiting this account; try again in a minute.",
    errors.NotFound: "Check the ID and the region (`region=…`).",
    errors.LimitExceeded: "An AWS service quota was reached; free some resources or raise the quota.",
    errors.AwsUnavailable: "AWS did not answer; try again shortly.",
}


def map_client_error(exc: botocore.exceptions.ClientError, what: str) -> errors.AwsError:
    """Turn a botocore ClientError into one of the bot's AwsError subclasses."""
    err = exc.response.get("Error", {})
    code = err.get("Code", "") or ""
    message = err.get("Message", "") or ""
    message = message if message and message != code else "AWS refused the request"
    cls = _EXACT.get(code)
    if cls is None:
        if code.endswith(".NotFound") or code.endswith("NotFound") or code == "InvalidAMIID.Unavailable":
            cls = errors.NotFound
        elif code.endswith("LimitExceeded"):
            cls = errors.LimitExceeded
        elif code.startswith("Invalid") and (code.endswith(".Malformed") or code.endswith("Parameter")):
            cls = errors.InvalidParameter
        else:
            cls = errors.AwsError
    return cls(f"{what} failed: {message} ({code})", _HINTS.get(cls, ""), code=code)


def _botocore_classes(*names: str) -> tuple[type[Exception], ...]:
    # By name, skipping any this botocore does not have (LoginError is recent).
    return tuple(getattr(botocore.exceptions, n) for n in names if hasattr(botocore.exceptions, n))


# botocore's own failures, where AWS never answered (or never got asked).
_CREDENTIAL_ERRORS = _botocore_classes(
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",  # credential_process, assume-role, the container or instance role
    "MetadataRetrievalError",
    "NoAuthTokenError",
    "TokenRetrievalError",
    "SSOError",  # UnauthorizedSSOTokenError, SSOTokenLoadError
    "LoginError",
    "RefreshWithMFAUnsupportedError",
    "UnknownCredentialError",
    "ProfileNotFound",
)
_NETWORK_ERRORS = _botocore_classes("ConnectionError", "HTTPClientError", "IncompleteReadError")
_CREDENTIALS_HINT = (
    "Check the AWS credentials the bot runs with (environment, profile, SSO or instance role); "
    "`python -m bot check` tests them."
)
_CONFIG_HINT = "Check the bot's AWS settings (region, AWS_ENDPOINT_URL, AWS_PROFILE, ~/.aws/config)."


def map_botocore_error(exc: botocore.exceptions.BotoCoreError, what: str) -> errors.AwsError:
    """Turn a botocore failure that is not an AWS answer (credentials, network, config) into an AwsError."""
    code = type(exc).__name__
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return errors.AccessDenied(f"{what} failed: no AWS credentials", _CREDENTIALS_HINT, code=code)
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return errors.AccessDenied(f"{what} failed: could not get AWS credentials: {exc}", _CREDENTIALS_HINT, code=code)
    if isinstance(exc, botocore.exceptions.SSLError):
        return errors.AwsUnavailable(
            f"{what} failed: the TLS connection to AWS failed: {exc}",
            "Check the CA bundle (AWS_CA_BUNDLE) and any TLS-inspecting proxy between the bot and AWS.",
            code=code,
        )
    if isinstance(exc, botocore.exceptions.ProxyConnectionError):
        return errors.AwsUnavailable(
            f"{what} failed: could not reach AWS through the proxy: {exc}",
            "Check the proxy settings (HTTPS_PROXY, NO_PROXY).",
            code=code,
        )
    if isinstance(exc, _NETWORK_ERRORS):
        return errors.AwsUnavailable(f"{what} failed: {exc}", _HINTS[errors.AwsUnavailable], code=code)
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return errors.InvalidParameter(
            f"{what} failed: {exc}", "Check the values given (`help` shows the usage).", code=code
        )
    if isinstance(exc, botocore.exceptions.PaginationError):
        return errors.AwsError(
            f"{what} failed: AWS returned an inconsistent listing ({exc})", "Try again in a minute.", code=code
        )
    return errors.AwsError(f"{what} failed: {exc}", _CONFIG_HINT, code=code)


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Re-raise botocore failures of the block as the bot's own exceptions.

    Every one of them: AWS's answers (ClientError) by their code, and
    botocore's own (BotoCoreError: credentials, TLS, proxy, timeouts,
    configuration, paging; and an answer it cannot parse) by their kind, so
    none escapes as a traceback or fails a whole sweep region unexplained.
    """
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise map_client_error(exc, what) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise map_botocore_error(exc, what) from exc
    except botocore.parsers.ResponseParserError as exc:  # not a BotoCoreError, yet botocore's own
        raise errors.AwsUnavailable(
            f"{what} failed: the bot could not read AWS's answer",
            "Try again; if it keeps failing, check for a proxy that alters or replaces AWS's responses.",
            code=type(exc).__name__,
        ) from exc


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def parse_timestamp(value: str | float) -> datetime:
    """A timestamp from an AWS response; ISO 8601 with a zone the fast way, anything else as botocore does.

    botocore reads every timestamp with dateutil, about 50 µs each: nearly half
    the CPU a page of 1000 snapshots costs.  EC2 sends ISO 8601 in UTC, which
    `datetime.fromisoformat` reads in 1 µs.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return botocore.utils.parse_timestamp(value)


@cache
def known_regions() -> frozenset[str]:
    """EC2 regions from botocore's bundled endpoint data (no network call)."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in ("aws", "aws-us-gov", "aws-cn"):
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


# --- the gateway ---------------------------------------------------------------


class Ec2Gateway:
    """Every EC2 (and STS) call the bot makes, region by region.

    Takes an injected boto3 Session so tests can hand it one pointed at moto,
    a Stubber, or the benchmark fake; boto3 itself honours AWS_ENDPOINT_URL.
    """

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        max_attempts: int = 8,
        retry_mode: str = "standard",
        connect_timeout: float = 5,
        read_timeout: float = 30,
        max_pool_connections: int = 20,
        pacer: Pacer | None = None,
        deletion_guard: Callable[[], str] | None = None,
    ):
        """`deletion_guard` answers, at the moment of each delete, why deletions may not happen ("" = they may)."""
        self._deletion_guard = deletion_guard
        if session is None:
            try:
                session = boto3.session.Session()
            except botocore.exceptions.BotoCoreError as exc:  # AWS_PROFILE unknown, ~/.aws/config unreadable
                raise errors.ConfigError(
                    "AWS_PROFILE / AWS_CONFIG_FILE", f"an existing profile and a readable AWS config ({exc})"
                ) from exc
        self.session = session
        # Parsers are made per response from the session's factory, so this
        # reaches every client of the session, made before or after.
        self.session._session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_timestamp
        )
        # Every EC2 call first spends a token of its (region, action) bucket.
        self.pacer = pacer or Pacer()
        self._client_config = botocore.config.Config(
            # botocore's "max_attempts" counts retries only; "total_max_attempts" counts every attempt.
            retries={"mode": retry_mode, "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
        )
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    # -- plumbing --

    def client(self, region: str, service: str = "ec2"):
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                client = self.session.client(service, region_name=region, config=self._client_config)
                client.meta.events.register(f"before-send.{service}", self._count)
                if service == "ec2":
                    # Every attempt, retries included, spends a token: EC2 charges each request
                    # that reaches it, so pacing only first attempts lets retries overdraw the
                    # bucket and a throttle storm feed itself (benchmarks/sweep_scale.py).
                    client.meta.events.register("before-send.ec2", self._pace_for(region))
                    # A throttle tells the pacer EC2's bucket is empty: someone else spends it too.
                    client.meta.events.register("needs-retry.ec2", self._learn_for(region))
                self._clients[key] = client
            return self._clients[key]

    def warm_up(self, regions: Iterable[str]) -> None:
        """Build the EC2 clients and load their paginator models now, without calling AWS.

        botocore does both lazily, parsing its large JSON models while holding
        the GIL (about 150 ms for the first client); done on the first Slack
        command instead of at start, that stalls every ack in flight.
        """
        for region in regions:
            try:
                client = self.client(region)
                client.can_paginate("describe_snapshots")  # a local lookup (not an AWS action) that loads the models
            except Exception as exc:
                # Only a head start: never a reason not to start.  A client that cannot be
                # built (credentials are resolved here) fails again at the first real call,
                # where aws_errors turns it into a message for the user.
                log.warning("could not prepare the EC2 client for %s; carrying on: %s", region, exc)

    def _pace_for(self, region: str):
        def pace(event_name: str = "", **_: object) -> None:  # must return None (a value would be the response)
            self.pacer.take(region, event_name.rsplit(".", 1)[-1])

        return pace

    def _learn_for(self, region: str):
        def learn(event_name: str = "", response: object = None, **_: object) -> None:  # None: botocore decides
            if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
                if response[1].get("Error", {}).get("Code") in _BUCKET_EMPTY:
                    self.pacer.throttled(region, event_name.rsplit(".", 1)[-1])

        return learn

    def _count(self, event_name: str = "", **_: object) -> None:
        action = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.calls[action] += 1

    def _pages(self, region: str, operation: str, key: str, ids_param: str, ids, **params) -> Iterator[dict]:
        client = self.client(region)
        if ids:
            params[ids_param] = list(ids)
        else:
            params["PaginationConfig"] = {"PageSize": PAGE_SIZE}
        for page in client.get_paginator(operation).paginate(**params):
            yield from page.get(key, ())

    def _one(self, describe, region: str, resource_id: str):
        """Describe one resource by ID; a missing one is a friendly NotFound naming it."""
        try:
            found = list(describe(region, [resource_id]))
        except errors.NotFound:
            found = []
        if not found:
            raise errors.NotFound(f"{resource_id} not found in {region}.", _HINTS[errors.NotFound])
        return found[0]

    # -- identity --

    def account_id(self, region: str) -> str:
        with aws_errors("GetCallerIdentity"):
            return self.client(region, "sts").get_caller_identity()["Account"]

    def availability_zones(self, region: str) -> list[str]:
        with aws_errors("DescribeAvailabilityZones"):
            resp = self.client(region).describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
        return sorted(z["ZoneName"] for z in resp["AvailabilityZones"])

    # -- snapshots --

    def describe_snapshots(
        self,
        region: str,
        snapshot_ids: Sequence[str] = (),
        filters: Sequence[Mapping] = (),
    ) -> Iterator[Snapshot]:
        """Own snapshots (OwnerIds=self), paginated; filters are EC2 filters."""
        with aws_errors("DescribeSnapshots"):
            params = {"OwnerIds": ["self"]}
            if filters:
                params["Filters"] = list(filters)
            for raw in self._pages(region, "describe_snapshots", "Snapshots", "SnapshotIds", snapshot_ids, **params):
                yield Snapshot.from_api(raw, region)

    def get_snapshot(self, region: str, snapshot_id: str) -> Snapshot:
        return self._one(self.describe_snapshots, region, snapshot_id)

    def create_snapshot(self, region: str, volume_id: str, description: str, tags: Mapping[str, str]) -> Snapshot:
        with aws_errors(f"CreateSnapshot of {volume_id}"):
            raw = self.client(region).create_snapshot(
                VolumeId=volume_id,
                Description=description,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
            )
        return Snapshot.from_api(raw, region)

    def copy_snapshot(
        self, source_region: str, snapshot_id: str, dest_region: str, description: str, tags: Mapping[str, str]
    ) -> str:
        """Start a cross-region copy; the call goes to the destination region."""
        with aws_errors(f"CopySnapshot of {snapshot_id} to {dest_region}"):
            raw = self.client(dest_region).copy_snapshot(
                SourceRegion=source_region,
                SourceSnapshotId=snapshot_id,
                Description=description,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
            )
        return raw["SnapshotId"]

    def _may_delete(self, what: str) -> None:
        """The last word before a delete leaves: a freeze that landed a moment ago still stops it."""
        why = self._deletion_guard() if self._deletion_guard else ""
        if why:
            raise errors.Frozen(f"{what} not sent: {why}")

    def delete_snapshot(self, region: str, snapshot_id: str) -> None:
        self._may_delete(f"DeleteSnapshot {snapshot_id}")
        with aws_errors(f"DeleteSnapshot {snapshot_id}"):
            self.client(region).delete_snapshot(SnapshotId=snapshot_id)

    def create_tags(self, region: str, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
        with aws_errors("CreateTags"):
            self.client(region).create_tags(Resources=list(resource_ids), Tags=tag_list(tags))

    # -- the snapshot archive tier --

    def archive_snapshot(self, region: str, snapshot_id: str) -> None:
        """ModifySnapshotTier to the archive tier (hours to complete; the snapshot is unusable until restored).

        Not a deletion, but a freeze stops it too (README, "Archive tier"): the last word is the same guard.
        """
        self._may_delete(f"ModifySnapshotTier {snapshot_id}")
        with aws_errors(f"ModifySnapshotTier {snapshot_id}"):
            self.client(region).modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")

    def restore_snapshot_tier(self, region: str, snapshot_id: str, days: int | None = None) -> None:
        """RestoreSnapshotTier: for `days` (a temporary restore), or permanently back to the standard tier."""
        params = {"TemporaryRestoreDays": days} if days else {"PermanentRestore": True}
        with aws_errors(f"RestoreSnapshotTier {snapshot_id}"):
            self.client(region).restore_snapshot_tier(SnapshotId=snapshot_id, **params)

    # -- volumes --

    def describe_volumes(
        self, region: str, volume_ids: Sequence[str] = (), filters: Sequence[Mapping] = ()
    ) -> Iterator[Volume]:
        with aws_errors("DescribeVolumes"):
            params = {"Filters": list(filters)} if filters else {}
            for raw in self._pages(region, "describe_volumes", "Volumes", "VolumeIds", volume_ids, **params):
                yield Volume.from_api(raw, region)

    def get_volume(self, region: str, volume_id: str) -> Volume:
        return self._one(self.describe_volumes, region, volume_id)

    def create_volume(
        self, region: str, snapshot_id: str, az: str, volume_type: str, tags: Mapping[str, str]
    ) -> Volume:
        with aws_errors(f"CreateVolume from {snapshot_id}"):
            raw = self.client(region).create_volume(
                SnapshotId=snapshot_id,
                AvailabilityZone=az,
                VolumeType=volume_type,
                TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(tags)}],
            )
        return Volume.from_api(raw, region)

    def attach_volume(self, region: str, volume_id: str, instance_id: str, device: str) -> None:
        with aws_errors(f"AttachVolume {volume_id} to {instance_id}"):
            self.client(region).attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)

    # -- instances --

    def describe_instances(
        self, region: str, instance_ids: Sequence[str] = (), filters: Sequence[Mapping] = ()
    ) -> Iterator[Instance]:
        with aws_errors("DescribeInstances"):
            params = {"Filters": list(filters)} if filters else {}
            for reservation in self._pages(
                region, "describe_instances", "Reservations", "InstanceIds", instance_ids, **params
            ):
                for raw in reservation.get("Instances", ()):
                    yield Instance.from_api(raw, region)

    def get_instance(self, region: str, instance_id: str) -> Instance:
        return self._one(self.describe_instances, region, instance_id)

    # -- images --

    def describe_images(
        self, region: str, image_ids: Sequence[str] = (), filters: Sequence[Mapping] = (), owners=("self",)
    ) -> Iterator[Image]:
        with aws_errors("DescribeImages"):
            # A disabled AMI still holds its snapshots (and can be re-enabled): EC2 hides it unless asked,
            # and a sweep that did not see it would take its snapshots for orphans.
            params: dict = {"IncludeDisabled": True}
            if owners and not image_ids:
                params["Owners"] = list(owners)
            if filters:
                params["Filters"] = list(filters)
            for raw in self._pages(region, "describe_images", "Images", "ImageIds", image_ids, **params):
                yield Image.from_api(raw, region)

    def get_image(self, region: str, image_id: str) -> Image:
        return self._one(self.describe_images, region, image_id)

    def images_using_snapshots(self, region: str, snapshot_ids: Iterable[str]) -> dict[str, str]:
        """snapshot ID → ID of the registered AMI it backs, for the given snapshots."""
        wanted = set(snapshot_ids)
        backing: dict[str, str] = {}
        if not wanted:
            return backing
        for image in self.describe_images(region):
            for snap in image.snapshot_ids:
                if snap in wanted:
                    backing[snap] = image.id
        return backing

    # -- images: create, copy, share, deregister, launch --

    def create_image(
        self,
        region: str,
        instance_id: str,
        name: str,
        description: str,
        tags: Mapping[str, str],
        *,
        no_reboot: bool = True,
    ) -> str:
        """Start CreateImage; returns the new AMI ID.

        Only the image is tagged here: a *snapshot* TagSpecification is valid in
        AWS but fails in moto, so the backing snapshots are tagged with CreateTags
        once they are known (bot.domain.amis.tag_backing_snapshots).
        """
        with aws_errors(f"CreateImage of {instance_id}"):
            raw = self.client(region).create_image(
                InstanceId=instance_id,
                Name=name,
                Description=description,
                NoReboot=no_reboot,
                TagSpecifications=[{"ResourceType": "image", "Tags": tag_list(tags)}],
            )
        return raw["ImageId"]

    def copy_image(
        self,
        source_region: str,
        image_id: str,
        dest_region: str,
        name: str,
        description: str,
        client_token: str = "",
    ) -> str:
        """Start a cross-region AMI copy; the call goes to the destination region. Returns the new AMI ID."""
        params = {"SourceRegion": source_region, "SourceImageId": image_id, "Name": name, "Description": description}
        if client_token:
            params["ClientToken"] = client_token
        with aws_errors(f"CopyImage of {image_id} to {dest_region}"):
            return self.client(dest_region).copy_image(**params)["ImageId"]

    def deregister_image(self, region: str, image_id: str) -> None:
        self._may_delete(f"DeregisterImage {image_id}")
        with aws_errors(f"DeregisterImage {image_id}"):
            self.client(region).deregister_image(ImageId=image_id)

    def image_launch_permissions(self, region: str, image_id: str) -> tuple[str, ...]:
        """Account IDs the AMI is explicitly shared with (public sharing shows as Image.public)."""
        with aws_errors(f"DescribeImageAttribute of {image_id}"):
            raw = self.client(region).describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
        return tuple(sorted(p["UserId"] for p in raw.get("LaunchPermissions", ()) if p.get("UserId")))

    def add_launch_permission(self, region: str, image_id: str, account_id: str) -> None:
        with aws_errors(f"ModifyImageAttribute (share {image_id} with {account_id})"):
            self.client(region).modify_image_attribute(
                ImageId=image_id, LaunchPermission={"Add": [{"UserId": account_id}]}
            )

    def remove_launch_permission(self, region: str, image_id: str, account_id: str) -> None:
        with aws_errors(f"ModifyImageAttribute (unshare {image_id} from {account_id})"):
            self.client(region).modify_image_attribute(
                ImageId=image_id, LaunchPermission={"Remove": [{"UserId": account_id}]}
            )

    def executable_images(self, region: str, image_ids: Sequence[str]) -> set[str]:
        """Which of these AMIs this account has an explicit launch permission for (shared with it)."""
        if not image_ids:
            return set()
        with aws_errors("DescribeImages"):
            raw = self.client(region).describe_images(
                Filters=[{"Name": "image-id", "Values": list(image_ids)}], ExecutableUsers=["self"]
            )
        return {i["ImageId"] for i in raw.get("Images", ())}

    def find_images(self, region: str, image_ids: Iterable[str]) -> dict[str, Image]:
        """The AMIs among `image_ids` that exist and are visible, by ID; missing ones are simply absent.

        DescribeImages with ImageIds fails as a whole on one unknown ID, so this
        filters on image-id instead (200 values a filter).
        """
        ids = sorted(set(image_ids))
        found: dict[str, Image] = {}
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            for image in self.describe_images(region, filters=[{"Name": "image-id", "Values": chunk}], owners=()):
                found[image.id] = image
        return found

    def key_pair_exists(self, region: str, key_name: str) -> bool:
        with aws_errors(f"DescribeKeyPairs {key_name}"):
            try:
                raw = self.client(region).describe_key_pairs(KeyNames=[key_name])
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidKeyPair.NotFound":
                    return False
                raise
        return any(k.get("KeyName") == key_name for k in raw.get("KeyPairs", ()))

    def run_instances(
        self,
        region: str,
        image_id: str,
        instance_type: str,
        count: int,
        client_token: str,
        tags: Mapping[str, str],
        key_name: str | None = None,
    ) -> list[Instance]:
        """Launch exactly `count` instances (MinCount = MaxCount).

        AWS treats a repeated ClientToken as the same request and returns the
        original reservation, so a retry (botocore's or ours) never launches twice.
        """
        params: dict = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": count,
            "MaxCount": count,
            "ClientToken": client_token,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(tags)}],
        }
        if key_name:
            params["KeyName"] = key_name
        with aws_errors(f"RunInstances from {image_id}"):
            raw = self.client(region).run_instances(**params)
        return [Instance.from_api(i, region) for i in raw.get("Instances", ())]

    def count_instances_by_image(self, region: str) -> Counter[str]:
        """AMI ID → how many instances not terminated were launched from it (one paginated pass)."""
        filters = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
        return Counter(i.image_id for i in self.describe_instances(region, filters=filters))

    def instances_using_image(self, region: str, image_id: str) -> tuple[str, ...]:
        """IDs of the instances (not terminated) launched from the AMI."""
        filters = [
            {"Name": "image-id", "Values": [image_id]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
        return tuple(sorted(i.id for i in self.describe_instances(region, filters=filters)))

    def image_uses(self, region: str) -> dict[str, list[ImageUse]]:
        """AMI ID → what would launch from it, for the whole region in one map (built once per run, not per item).

        Instances not terminated; launch templates whose default or latest
        version names the AMI; Auto Scaling groups through such a template
        (or a pinned version of one) or through a launch configuration.
        """
        uses: dict[str, list[ImageUse]] = {}
        for instance in self.describe_instances(
            region, filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
        ):
            uses.setdefault(instance.image_id, []).append(ImageUse("instance", instance.id))
        ec2 = self.client(region)
        template_images: dict[tuple[str, str], str] = {}  # (template ID, version as asked) → AMI
        with aws_errors("DescribeLaunchTemplates"):
            templates = [
                t
                for page in ec2.get_paginator("describe_launch_templates").paginate(PaginationConfig={"PageSize": 200})
                for t in page.get("LaunchTemplates", ())
            ]
        for template in templates:
            tid = template["LaunchTemplateId"]
            with aws_errors(f"DescribeLaunchTemplateVersions {tid}"):
                versions = ec2.describe_launch_template_versions(LaunchTemplateId=tid, Versions=["$Default", "$Latest"])
            for version in versions.get("LaunchTemplateVersions", ()):
                image = version.get("LaunchTemplateData", {}).get("ImageId", "")
                number = str(version.get("VersionNumber", ""))
                labels = []
                if version.get("DefaultVersion"):
                    labels.append("$Default")
                if number == str(template.get("LatestVersionNumber", "")):
                    labels.append("$Latest")
                for label in labels:
                    template_images[(tid, label)] = image
                template_images[(tid, number)] = image
                if image and labels:
                    use = ImageUse(
                        "launch template", tid, f"{template.get('LaunchTemplateName', '')} {'/'.join(labels)}"
                    )
                    if use not in uses.get(image, []):
                        uses.setdefault(image, []).append(use)
        autoscaling = self.client(region, "autoscaling")
        with aws_errors("DescribeLaunchConfigurations"):
            configurations = {
                c["LaunchConfigurationName"]: c.get("ImageId", "")
                for page in autoscaling.get_paginator("describe_launch_configurations").paginate()
                for c in page.get("LaunchConfigurations", ())
            }
        with aws_errors("DescribeAutoScalingGroups"):
            groups = [
                g
                for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate()
                for g in page.get("AutoScalingGroups", ())
            ]
        for group in groups:
            name = group["AutoScalingGroupName"]
            spec = group.get("LaunchTemplate") or (
                group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
            )
            if spec:
                tid = spec.get("LaunchTemplateId", "")
                version = str(spec.get("Version") or "$Default")
                image = template_images.get((tid, version))
                if image is None and tid:  # a pinned version the map does not have: ask for it
                    with aws_errors(f"DescribeLaunchTemplateVersions {tid}"):
                        found = ec2.describe_launch_template_versions(LaunchTemplateId=tid, Versions=[version])
                    image = next(
                        (v.get("LaunchTemplateData", {}).get("ImageId", "") for v in found["LaunchTemplateVersions"]),
                        "",
                    )
                if image:
                    uses.setdefault(image, []).append(
                        ImageUse("Auto Scaling group", name, f"launch template {tid} {version}")
                    )
            elif group.get("LaunchConfigurationName") in configurations:
                lc = group["LaunchConfigurationName"]
                image = configurations[lc]
                if image:
                    uses.setdefault(image, []).append(
                        ImageUse("Auto Scaling group", name, f"launch configuration {lc}")
                    )
        return uses

    # -- restore drills (bot/flows/drill_flow.py): what a drill creates, checks and removes --
    # Only ever called on the drill's own resources: the flow checks the chatops:drill tag first.

    def detach_volume(self, region: str, volume_id: str, instance_id: str) -> None:
        with aws_errors(f"DetachVolume {volume_id} from {instance_id}"):
            self.client(region).detach_volume(VolumeId=volume_id, InstanceId=instance_id)

    def delete_volume(self, region: str, volume_id: str) -> None:
        """DeleteVolume: a drill's restored volume (never a backup: the freeze guards snapshots and AMIs)."""
        with aws_errors(f"DeleteVolume {volume_id}"):
            self.client(region).delete_volume(VolumeId=volume_id)

    def default_subnet(self, region: str, az: str = "") -> str:
        """The default subnet of `az` (any AZ when ""), or "" when the region has no default VPC."""
        filters = [{"Name": "default-for-az", "Values": ["true"]}]
        if az:
            filters.append({"Name": "availability-zone", "Values": [az]})
        with aws_errors("DescribeSubnets"):
            subnets = self.client(region).describe_subnets(Filters=filters).get("Subnets", ())
        return min((s["SubnetId"] for s in subnets), default="")

    def launch_drill_instance(
        self, region: str, image_id: str, instance_type: str, subnet_id: str, client_token: str, tags: Mapping[str, str]
    ) -> Instance:
        """One instance from the AMI, with no public IP, in `subnet_id`; tagged at launch (a crash leaves it found)."""
        params: dict = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token,
            "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet_id, "AssociatePublicIpAddress": False}],
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tag_list(tags)},
                {"ResourceType": "volume", "Tags": tag_list(tags)},
            ],
        }
        with aws_errors(f"RunInstances from {image_id}"):
            raw = self.client(region).run_instances(**params)
        return Instance.from_api(raw["Instances"][0], region)

    def instance_status(self, region: str, instance_id: str) -> InstanceStatus:
        """State and status checks of one instance (IncludeAllInstances: a pending one answers too)."""
        with aws_errors(f"DescribeInstanceStatus {instance_id}"):
            raw = self.client(region).describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
        found = raw.get("InstanceStatuses", ())
        if not found:
            return InstanceStatus(instance_id, "pending", "initializing", "initializing")
        return InstanceStatus.from_api(found[0])

    def terminate_instances(self, region: str, instance_ids: Sequence[str]) -> None:
        with aws_errors(f"TerminateInstances {', '.join(instance_ids)}"):
            self.client(region).terminate_instances(InstanceIds=list(instance_ids))

    # -- the Recycle Bin and snapshot locks (bot/domain/recycle_bin.py) --
    #
    # Read once per region for a plan, a sweep's listing or an execution, never once per item.
    # What a deletion would leave recoverable is only shown; what refuses a deletion
    # (a lock, deregistration protection) is enforced by EC2 itself as well.

    def retention_rules(self, region: str) -> tuple[RetentionRule, ...]:
        """The region's Recycle Bin rules for snapshots and AMIs, with their tags.

        ListRules (paginated, one pass per resource type) does not return a
        rule's tags, so each rule is read with GetRule: rules are few (a
        quota of 250 a region), unlike the items they cover.
        """
        rbin = self.client(region, "rbin")
        rules = []
        for resource_type in ("EBS_SNAPSHOT", "EC2_IMAGE"):
            with aws_errors("ListRules"):
                summaries = [
                    r
                    for page in rbin.get_paginator("list_rules").paginate(ResourceType=resource_type)
                    for r in page.get("Rules", ())
                ]
            for summary in summaries:
                with aws_errors(f"GetRule {summary.get('Identifier', '')}"):
                    raw = rbin.get_rule(Identifier=summary["Identifier"])
                rules.append(RetentionRule.from_api({"ResourceType": resource_type, **raw}))
        return tuple(rules)

    def locked_snapshots(self, region: str) -> dict[str, SnapshotLock]:
        """Snapshot ID → its lock, for the snapshots locked now (governance, compliance, cooling off).

        Filtered on lock-state, so an account with many snapshots and few
        locks pays a page or two; DescribeLockedSnapshots has no paginator
        in botocore, so NextToken is followed here.
        """
        ec2 = self.client(region)
        params: dict = {
            "Filters": [{"Name": "lock-state", "Values": ["compliance", "governance", "compliance-cooloff"]}],
            "MaxResults": PAGE_SIZE,
        }
        locks: dict[str, SnapshotLock] = {}
        with aws_errors("DescribeLockedSnapshots"):
            while True:
                page = ec2.describe_locked_snapshots(**params)
                for raw in page.get("Snapshots", ()):
                    lock = SnapshotLock.from_api(raw)
                    locks[lock.snapshot_id] = lock
                token = page.get("NextToken")
                if not token:
                    return locks
                params["NextToken"] = token

    def snapshots_in_recycle_bin(self, region: str, snapshot_ids: Sequence[str] = ()) -> list[BinEntry]:
        params: dict = {"SnapshotIds": list(snapshot_ids)} if snapshot_ids else {}
        ec2 = self.client(region)
        with aws_errors("ListSnapshotsInRecycleBin"):
            return [
                BinEntry.from_api(raw, region, "snapshot")
                for page in ec2.get_paginator("list_snapshots_in_recycle_bin").paginate(**params)
                for raw in page.get("Snapshots", ())
            ]

    def images_in_recycle_bin(self, region: str, image_ids: Sequence[str] = ()) -> list[BinEntry]:
        params: dict = {"ImageIds": list(image_ids)} if image_ids else {}
        ec2 = self.client(region)
        with aws_errors("ListImagesInRecycleBin"):
            return [
                BinEntry.from_api(raw, region, "image")
                for page in ec2.get_paginator("list_images_in_recycle_bin").paginate(**params)
                for raw in page.get("Images", ())
            ]

    def restore_snapshot_from_recycle_bin(self, region: str, snapshot_id: str) -> None:
        with aws_errors(f"RestoreSnapshotFromRecycleBin {snapshot_id}"):
            self.client(region).restore_snapshot_from_recycle_bin(SnapshotId=snapshot_id)

    def restore_image_from_recycle_bin(self, region: str, image_id: str) -> None:
        with aws_errors(f"RestoreImageFromRecycleBin {image_id}"):
            self.client(region).restore_image_from_recycle_bin(ImageId=image_id)


# --- several accounts ------------------------------------------------------------

# The role session name of scheduled work; a command runs as chatops-<Slack user ID>, so the
# target account's CloudTrail names who typed it.
BOT_SESSION_NAME = "chatops-bot"


def role_session_name(user: str | None) -> str:
    """STS allows 2-64 characters of letters, digits and +=,.@_-."""
    if not user:
        return BOT_SESSION_NAME
    return re.sub(r"[^A-Za-z0-9+=,.@_-]", "", f"chatops-{user}")[:64]


def assume_role_session(
    base: boto3.session.Session, account: str, role: Account, session_name: str, region: str, sts=None
) -> boto3.session.Session:
    """A session acting in `role`'s account: AssumeRole at first use, refreshed by botocore before it expires.

    The credentials are deferred (no STS call until the first AWS call) and
    refreshable (botocore calls AssumeRole again in the last minutes before the
    hour is up), so a sweep that runs for hours never meets expired keys.  STS is
    asked at its regional endpoint; `external_id` is passed when configured.
    A role that cannot be assumed raises RoleUnavailable, naming the account.
    """
    sts = sts or base.client("sts", region_name=region)

    def fetch() -> dict[str, str]:
        params = {"RoleArn": role.role_arn, "RoleSessionName": session_name, "DurationSeconds": 3600}
        if role.external_id:
            params["ExternalId"] = role.external_id
        try:
            creds = sts.assume_role(**params)["Credentials"]
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            why = f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip().rstrip(":")
            raise errors.RoleUnavailable(account, role.role_arn, why, error.get("Code", "")) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise errors.RoleUnavailable(account, role.role_arn, str(exc), type(exc).__name__) from exc
        expiry = creds["Expiration"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry),
        }

    assumed = botocore.session.Session()
    assumed.set_config_variable("sts_regional_endpoints", "regional")
    # The service models are the same for every account: parse them once.
    assumed.register_component("data_loader", base._session.get_component("data_loader"))
    assumed._credentials = botocore.credentials.DeferredRefreshableCredentials(
        refresh_using=fetch, method="sts-assume-role"
    )
    return boto3.session.Session(botocore_session=assumed, region_name=region)


class Fleet:
    """A gateway per account: the bot's own, and one per `[[accounts]]` role (and per Slack user, for commands).

    Each account has its own pacer, shared by all its gateways: EC2's buckets
    are per account, region and action.  Gateways are made on first use and
    kept; making one calls no AWS.
    """

    def __init__(
        self,
        own: Ec2Gateway,
        own_name: str,
        accounts: Iterable[Account],
        sts_region: str,
        new_gateway: Callable[[boto3.session.Session, Pacer, str], Ec2Gateway],
        new_pacer: Callable[[], Pacer],
    ):
        self.own, self.own_name = own, own_name
        self.accounts = {a.name: a for a in accounts}
        self.sts_region = sts_region
        self._new_gateway, self._new_pacer = new_gateway, new_pacer
        self._gateways: dict[tuple[str, str], Ec2Gateway] = {}
        self._pacers: dict[str, Pacer] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.own_name, *self.accounts)

    def gateway(self, account: str | None = None, user: str | None = None) -> Ec2Gateway:
        """The gateway acting in `account` (None or "": the bot's own), as `user` typed it (None: the bot)."""
        if not account or account == self.own_name:
            return self.own
        role = self.accounts.get(account)
        if role is None:
            raise errors.NotFound(f"no account is called {account!r}.", f"Accounts: {', '.join(self.names)}.")
        key = (account, role_session_name(user))
        with self._lock:
            if key not in self._gateways:
                pacer = self._pacers.setdefault(account, self._new_pacer())
                session = assume_role_session(self.own.session, account, role, key[1], self.sts_region)
                self._gateways[key] = self._new_gateway(session, pacer, account)
            return self._gateways[key]

    def account_id(self, account: str | None, region: str) -> str:
        """The 12-digit ID of a configured account (from its role ARN; the bot's own from STS)."""
        role = self.accounts.get(account or "")
        return role.account_id if role else self.own.account_id(region)
