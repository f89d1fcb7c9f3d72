"""A small, fast stand-in for the EC2 Query API, for benchmarks at scale.

moto is too slow at 100,000 snapshots (its tag matching rescans everything)
and ignores MaxResults/NextToken, so a sweep benchmarked against it measures
nothing real.  This fake serves only what the bot's sweep (and Cloud
Custodian's equivalent) calls, but serves it the way EC2 does:

* the real wire protocol: form-encoded POST with ``Action`` and ``Version``,
  XML answers in the EC2 namespace with a ``requestId``, and EC2's error
  document (``<Response><Errors><Error><Code>…``) with its HTTP status, so an
  unmodified boto3 reaches it through ``AWS_ENDPOINT_URL``;
* one server, many regions: the region comes from the SigV4 credential scope
  (``…/us-east-1/ec2/aws4_request``); each region has its own inventory and
  its own token buckets;
* many accounts: STS ``AssumeRole`` hands out keys that act in the role's
  account (``arn:aws:iam::111111111111:role/x`` → 111111111111); the account
  of a request is the one its SigV4 access key was issued for (any other key,
  such as the bot's own, is ``ACCOUNT_ID``'s), and each (account, region) has
  its own inventory and token buckets; ``deny_role(arn)`` makes a role's
  AssumeRole answer AccessDenied, as a role with no trust for the caller does;
* real paging: ``MaxResults`` (5–1000) and an opaque ``NextToken``; without
  ``MaxResults`` a Describe returns everything, as EC2 does;
* EC2's published request-rate token buckets, one per (region, action,
  category) (EC2 evaluates every API on its own), answering HTTP 503
  ``RequestLimitExceeded`` when empty; ``speedup`` scales every rate and delay;
  ``competitor_share`` is the share of every bucket's refill another client of
  the account spends (the bot's clients get the rest);
* optional fault injection: a share of random 503 throttles, 500
  ``InternalError`` and dropped connections, either before the action runs or
  after it took effect (the case that makes a client retry a delete that
  already happened);
* counters: calls and throttles by action, faults by kind, and delete requests
  per resource ID (so repeated deletions are visible);
* the Recycle Bin (which moto lacks): ``rbin`` retention rules (ListRules,
  GetRule: the REST-JSON service, reached like the rest by its SigV4 scope),
  a DeleteSnapshot or DeregisterImage of an item a rule covers moves it to the
  bin until the retention ends (List*/Restore*FromRecycleBin); snapshot locks
  (LockSnapshot, DescribeLockedSnapshots) and AMI deregistration protection
  (Enable/DisableImageDeregistrationProtection), both refusing the deletion.

The inventory is held in insertion order with lazily built per-filter indexes,
so a page costs O(page) however large the region is, and
``seed_snapshots(region, 100_000)`` fills a region in memory in about a second.
Only the standard library is used: the fake can run in its own process
(``python -m benchmarks.fake_ec2 --port 0``) beside a client under test.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import functools
import heapq
import itertools
import json
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import translate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

ACCOUNT_ID = "123456789012"
AMAZON_ID = "137112412989"  # the owner of Amazon's public AMIs
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
DEFAULT_REGION = "us-east-1"
PAGE_MIN, PAGE_MAX = 5, 1000


# --- rate limits -----------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    burst: float  # bucket capacity
    rate: float  # tokens added per second


# EC2's published request token buckets ("Request throttling for the Amazon EC2
# API", devguide).  Categories first, then the actions that have their own
# numbers.  CreateImage and CopySnapshot are plain mutating actions there.
LIMITS: dict[str, Limit] = {
    "non-mutating": Limit(100, 20),
    "unfiltered-unpaginated": Limit(50, 10),
    "mutating": Limit(50, 5),
    "CreateSnapshot": Limit(100, 5),
    "DeleteSnapshot": Limit(100, 5),
    "DeregisterImage": Limit(100, 5),
    "CreateVolume": Limit(100, 5),
    "ModifySnapshotAttribute": Limit(100, 5),
    "CreateTags": Limit(100, 10),
    "DeleteTags": Limit(100, 10),
}

# Asked without MaxResults, IDs or filters, these draw on EC2's smaller bucket.
_UNPAGINATED_CLASS = {"DescribeInstances", "DescribeSnapshots", "DescribeVolumes"}


def category(action: str, params: Mapping[str, str]) -> str:
    """The token bucket an EC2 request draws on (a key of LIMITS)."""
    if action in LIMITS:
        return action
    if action.startswith(("Describe", "Get", "List", "Search")):
        if action in _UNPAGINATED_CLASS and not any(
            k == "MaxResults" or k == "NextToken" or k.startswith(("Filter.", _ID_PARAM.get(action, "-")))
            for k in params
        ):
            return "unfiltered-unpaginated"
        return "non-mutating"
    return "mutating"


class TokenBucket:
    """EC2's token bucket: starts full, refills continuously, never above capacity."""

    __slots__ = ("capacity", "rate", "tokens", "stamp")

    def __init__(self, limit: Limit, speedup: float, now: float):
        self.capacity = float(limit.burst)
        self.rate = float(limit.rate) * speedup
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


# --- errors ------------------------------------------------------------------------


class Ec2Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _not_found(resource_id: str) -> Ec2Error:
    prefix = resource_id.split("-", 1)[0]
    if prefix == "snap":
        return Ec2Error("InvalidSnapshot.NotFound", f"The snapshot '{resource_id}' does not exist.")
    if prefix == "ami":
        return Ec2Error("InvalidAMIID.NotFound", f"The image id '[{resource_id}]' does not exist")
    if prefix == "vol":
        return Ec2Error("InvalidVolume.NotFound", f"The volume '{resource_id}' does not exist.")
    if prefix == "i":
        return Ec2Error("InvalidInstanceID.NotFound", f"The instance ID '{resource_id}' does not exist")
    return Ec2Error("InvalidID", f"The ID '{resource_id}' is not valid")


_MALFORMED = {
    "snap": "InvalidSnapshotID.Malformed",
    "ami": "InvalidAMIID.Malformed",
    "vol": "InvalidVolumeID.Malformed",
    "i": "InvalidInstanceID.Malformed",
}


def _check_id(resource_id: str, prefix: str) -> None:
    if not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", resource_id):
        raise Ec2Error(_MALFORMED[prefix], f'Invalid id: "{resource_id}" (expecting "{prefix}-...")')


# --- records -------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


class _Record:
    __slots__ = ("seq", "id", "tags", "created", "ready_at")

    def state(self, now: float) -> str:
        raise NotImplementedError


class _Snapshot(_Record):
    __slots__ = ("volume_id", "size", "description", "owner", "alias", "public", "encrypted", "failed")

    def state(self, now: float) -> str:
        if self.failed:
            return "error"
        return "pending" if now < self.ready_at else "completed"

    def progress(self, now: float) -> str:
        if now >= self.ready_at:
            return "100%"
        span = self.ready_at - self.created
        return f"{min(99, int(100 * (now - self.created) / span)) if span > 0 else 0}%"


class _Image(_Record):
    __slots__ = ("name", "description", "owner", "alias", "public", "mappings", "source_instance", "protection")

    def state(self, now: float) -> str:
        return "pending" if now < self.ready_at else "available"

    @property
    def snapshot_ids(self) -> list[str]:
        return [snap for _, snap, _ in self.mappings if snap]


class _Volume(_Record):
    __slots__ = ("size", "az", "snapshot_id", "volume_type", "attachments", "status")

    def state(self, now: float) -> str:
        if self.attachments:
            return "in-use"
        return "creating" if now < self.ready_at else self.status


class _Instance(_Record):
    __slots__ = ("image_id", "status", "itype", "az", "volumes", "owner")

    def state(self, now: float) -> str:
        return self.status


_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


# --- filters -------------------------------------------------------------------------

Extractor = Callable[[_Record, float], Iterable[str]]


def _one(get: Callable[[_Record], object]) -> Extractor:
    return lambda r, now: (str(get(r)),)


def _bool(get: Callable[[_Record], object]) -> Extractor:
    return lambda r, now: ("true" if get(r) else "false",)


_COMMON: dict[str, Extractor] = {
    "tag-key": lambda r, now: r.tags.keys(),
    "tag-value": lambda r, now: r.tags.values(),
}

# Filter name → values of a record.  Names follow the EC2 API reference; an
# unknown name is refused as EC2 refuses it.
_FILTERS: dict[str, dict[str, Extractor]] = {
    "snapshot": {
        **_COMMON,
        "snapshot-id": lambda r, now: (r.id,),
        "volume-id": _one(lambda r: r.volume_id),
        "volume-size": _one(lambda r: r.size),
        "owner-id": _one(lambda r: r.owner),
        "owner-alias": lambda r, now: (r.alias,) if r.alias else (),
        "description": _one(lambda r: r.description),
        "encrypted": _bool(lambda r: r.encrypted),
        "status": lambda r, now: (r.state(now),),
        "progress": lambda r, now: (r.progress(now),),
        "start-time": lambda r, now: (_iso(r.created),),
        "storage-tier": lambda r, now: ("standard",),
    },
    "image": {
        **_COMMON,
        "image-id": lambda r, now: (r.id,),
        "name": _one(lambda r: r.name),
        "description": _one(lambda r: r.description),
        "owner-id": _one(lambda r: r.owner),
        "owner-alias": lambda r, now: (r.alias,) if r.alias else (),
        "is-public": _bool(lambda r: r.public),
        "state": lambda r, now: (r.state(now),),
        "creation-date": lambda r, now: (_iso(r.created),),
        "image-type": lambda r, now: ("machine",),
        "architecture": lambda r, now: ("x86_64",),
        "root-device-type": lambda r, now: ("ebs",),
        "source-instance-id": lambda r, now: (r.source_instance,) if r.source_instance else (),
        "block-device-mapping.snapshot-id": lambda r, now: [s for _, s, _ in r.mappings if s],
        "block-device-mapping.device-name": lambda r, now: [d for d, _, _ in r.mappings],
    },
    "volume": {
        **_COMMON,
        "volume-id": lambda r, now: (r.id,),
        "snapshot-id": _one(lambda r: r.snapshot_id),
        "size": _one(lambda r: r.size),
        "availability-zone": _one(lambda r: r.az),
        "volume-type": _one(lambda r: r.volume_type),
        "status": lambda r, now: (r.state(now),),
        "create-time": lambda r, now: (_iso(r.created),),
        "encrypted": lambda r, now: ("false",),
        "attachment.instance-id": lambda r, now: [i for i, _ in r.attachments],
        "attachment.device": lambda r, now: [d for _, d in r.attachments],
        "attachment.status": lambda r, now: ["attached" for _ in r.attachments],
    },
    "instance": {
        **_COMMON,
        "instance-id": lambda r, now: (r.id,),
        "image-id": _one(lambda r: r.image_id),
        "instance-state-name": lambda r, now: (r.status,),
        "instance-state-code": lambda r, now: (str(_STATE_CODES.get(r.status, 0)),),
        "instance-type": _one(lambda r: r.itype),
        "availability-zone": _one(lambda r: r.az),
        "launch-time": lambda r, now: (_iso(r.created),),
        "block-device-mapping.volume-id": lambda r, now: [v for _, v in r.volumes],
        "block-device-mapping.device-name": lambda r, now: [d for d, _ in r.volumes],
    },
}

# Filters whose values change only through API calls we make (CreateTags, …),
# never with time, so an index on them stays a superset of the truth.
_INDEXABLE = {
    "snapshot": {"tag-key", "snapshot-id", "volume-id", "owner-id"},
    "image": {"tag-key", "image-id", "name", "owner-id", "block-device-mapping.snapshot-id", "source-instance-id"},
    "volume": {"tag-key", "volume-id", "snapshot-id", "attachment.instance-id", "availability-zone"},
    "instance": {"tag-key", "instance-id", "image-id", "block-device-mapping.volume-id"},
}


def _tag_extractor(key: str) -> Extractor:
    return lambda r, now: (r.tags[key],) if key in r.tags else ()


class _Filter:
    """One EC2 filter: any of the record's values matches any of the filter's values."""

    __slots__ = ("name", "extract", "exact", "patterns")

    def __init__(self, kind: str, name: str, values: Sequence[str]):
        if name.startswith("tag:") and len(name) > 4:
            self.extract = _tag_extractor(name[4:])
        elif name in _FILTERS[kind]:
            self.extract = _FILTERS[kind][name]
        else:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
        self.name = name
        # EC2 filter values take * and ? wildcards (case-sensitive).
        self.exact = {v for v in values if "*" not in v and "?" not in v}
        self.patterns = [re.compile(translate(v)) for v in values if v not in self.exact]

    @property
    def indexable(self) -> bool:
        return not self.patterns

    def __call__(self, record: _Record, now: float) -> bool:
        for value in self.extract(record, now):
            if value in self.exact or any(p.match(value) for p in self.patterns):
                return True
        return False


def _indexable_name(kind: str, name: str) -> bool:
    return name.startswith("tag:") or name in _INDEXABLE[kind]


# --- an ordered, indexed table -----------------------------------------------------------


class _Table:
    """Records of one kind in one region, in creation order, with lazy indexes.

    `seqs` lists every sequence number ever added (ascending); deleted ones are
    skipped on read and compacted away when they pile up.  An index maps a
    filter value to the ascending seqs of records that had it; stale entries
    are harmless because every candidate is checked against every filter, so a
    page walks only its candidates, never the whole table.
    """

    def __init__(self, kind: str, counter: Iterator[int]):
        self.kind = kind
        self._counter = counter
        self.by_id: dict[str, _Record] = {}
        self.by_seq: dict[int, _Record] = {}
        self.seqs: list[int] = []
        self._dead = 0
        self._indexes: dict[str, dict[str, list[int]]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, record_id: str) -> _Record | None:
        return self.by_id.get(record_id)

    def add(self, record: _Record) -> None:
        record.seq = next(self._counter)
        self.by_id[record.id] = record
        self.by_seq[record.seq] = record
        self.seqs.append(record.seq)
        for name, index in self._indexes.items():
            for value in self._values(name, record):
                index.setdefault(value, []).append(record.seq)

    def remove(self, record_id: str) -> _Record | None:
        record = self.by_id.pop(record_id, None)
        if record is not None:
            del self.by_seq[record.seq]
            self._dead += 1
            if self._dead > 1000 and self._dead > len(self.by_id):
                self._compact()
        return record

    def changed(self, record: _Record) -> None:
        """Add a changed record's current values to the built indexes (old ones go stale)."""
        for name, index in self._indexes.items():
            for value in self._values(name, record):
                seqs = index.setdefault(value, [])
                at = bisect.bisect_left(seqs, record.seq)
                if at == len(seqs) or seqs[at] != record.seq:
                    seqs.insert(at, record.seq)

    def _values(self, name: str, record: _Record) -> Iterable[str]:
        if name.startswith("tag:"):
            value = record.tags.get(name[4:])
            return () if value is None else (value,)
        return _FILTERS[self.kind][name](record, 0.0)

    def _index(self, name: str) -> dict[str, list[int]]:
        index = self._indexes.get(name)
        if index is None:
            index = {}
            for seq in self.seqs:
                record = self.by_seq.get(seq)
                if record is not None:
                    for value in self._values(name, record):
                        index.setdefault(value, []).append(seq)
            self._indexes[name] = index
        return index

    def _compact(self) -> None:
        alive = self.by_seq
        self.seqs = [s for s in self.seqs if s in alive]
        for index in self._indexes.values():
            for value in list(index):
                kept = [s for s in index[value] if s in alive]
                if kept:
                    index[value] = kept
                else:
                    del index[value]
        self._dead = 0

    def _driver(self, filters: Sequence[_Filter]) -> list[list[int]]:
        """The smallest set of ascending seq lists that holds every match."""
        best: list[list[int]] = [self.seqs]
        best_size = len(self.seqs)
        for f in filters:
            if f.indexable and _indexable_name(self.kind, f.name):
                index = self._index(f.name)
                lists = [index[v] for v in f.exact if v in index]
                size = sum(map(len, lists))
                if size < best_size:
                    best, best_size = lists, size
        return best

    def page(
        self,
        after: int,
        filters: Sequence[_Filter],
        visible: Callable[[_Record], bool],
        limit: int | None,
        now: float,
    ) -> tuple[list[_Record], int | None]:
        """Up to `limit` matching records with seq > `after`, and the seq to resume after (None when done)."""
        lists = [lst for lst in self._driver(filters) if lst]
        streams = [_tail(lst, after) for lst in lists]
        seqs = streams[0] if len(streams) == 1 else _unique(heapq.merge(*streams)) if streams else iter(())
        found: list[_Record] = []
        for seq in seqs:
            record = self.by_seq.get(seq)
            if record is None or not visible(record) or not all(f(record, now) for f in filters):
                continue
            if limit is not None and len(found) == limit:
                return found, found[-1].seq  # one more exists: hand out a token
            found.append(record)
        return found, None


def _tail(seqs: list[int], after: int) -> Iterator[int]:
    # By index, not islice: islice would walk the skipped prefix.
    for i in range(bisect.bisect_right(seqs, after), len(seqs)):
        yield seqs[i]


def _unique(seqs: Iterable[int]) -> Iterator[int]:
    last = None
    for seq in seqs:
        if seq != last:
            yield seq
            last = seq


_TABLES = {"snapshot": "snapshots", "image": "images", "volume": "volumes", "instance": "instances"}


class _Region:
    """One region of one account: its inventory (every table) under one lock."""

    def __init__(self, name: str, counter: Iterator[int], account: str = ACCOUNT_ID):
        self.name = name
        self.account = account
        self.lock = threading.RLock()
        self.snapshots = _Table("snapshot", counter)
        self.images = _Table("image", counter)
        self.volumes = _Table("volume", counter)
        self.instances = _Table("instance", counter)
        self.backing: dict[str, set[str]] = defaultdict(set)  # snapshot → registered images using it
        self.image_names: dict[str, str] = {}
        self.rules: dict[str, dict] = {}  # Recycle Bin rule ID → the rule, as GetRule answers it
        self.bin: dict[str, tuple[_Record, float, float]] = {}  # ID → (record, entered, purged at)
        self.locks: dict[str, dict] = {}  # snapshot ID → its lock: mode, expires, cool_off_ends (epoch seconds)

    def table(self, kind: str) -> _Table:
        return getattr(self, _TABLES[kind])


# --- request parsing ------------------------------------------------------------------------

_ID_PARAM = {
    "DescribeSnapshots": "SnapshotId.",
    "DescribeImages": "ImageId.",
    "DescribeVolumes": "VolumeId.",
    "DescribeInstances": "InstanceId.",
}
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def _members(params: Mapping[str, str], prefix: str) -> list[str]:
    """`Prefix.1`, `Prefix.2`, … in index order."""
    found = []
    for key, value in params.items():
        if key.startswith(prefix + "."):
            rest = key[len(prefix) + 1 :]
            if rest.isdigit():
                found.append((int(rest), value))
    return [v for _, v in sorted(found)]


def _structs(params: Mapping[str, str], prefix: str) -> list[dict[str, str]]:
    """`Prefix.N.Field…` grouped by N, in index order, each as {"Field…": value}."""
    groups: dict[int, dict[str, str]] = defaultdict(dict)
    for key, value in params.items():
        if key.startswith(prefix + "."):
            number, _, field = key[len(prefix) + 1 :].partition(".")
            if number.isdigit() and field:
                groups[int(number)][field] = value
    return [groups[n] for n in sorted(groups)]


def _filters(kind: str, params: Mapping[str, str]) -> list[_Filter]:
    result = []
    for raw in _structs(params, "Filter"):
        name = raw.get("Name")
        if not name:
            raise Ec2Error("InvalidParameterValue", "A filter needs a Name")
        values = _members(raw, "Value")
        if not values:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' needs at least one value")
        result.append(_Filter(kind, name, values))
    return result


def _tags_from(raw: Sequence[Mapping[str, str]]) -> dict[str, str]:
    tags = {}
    for t in raw:
        key = t.get("Key", "")
        if not key:
            raise Ec2Error("InvalidParameterValue", "Tag keys must not be empty")
        if key.lower().startswith("aws:"):
            raise Ec2Error("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
        tags[key] = t.get("Value", "")
    return tags


def _tag_specs(params: Mapping[str, str]) -> dict[str, dict[str, str]]:
    specs: dict[str, dict[str, str]] = {}
    for spec in _structs(params, "TagSpecification"):
        kind = spec.get("ResourceType", "")
        specs.setdefault(kind, {}).update(_tags_from(_structs(spec, "Tag")))
    return specs


def _bool_param(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "false").lower() == "true"


def _encode_token(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode()


def _decode_token(kind: str, token: str) -> int:
    try:
        got_kind, seq = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if got_kind == kind:
            return int(seq)
    except (ValueError, UnicodeDecodeError):
        pass
    raise Ec2Error("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")


# --- XML ---------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value))


def _b(value: bool) -> str:
    return "true" if value else "false"


def _tag_set(tags: Mapping[str, str]) -> str:
    if not tags:
        return ""
    items = "".join(f"<item><key>{_e(k)}</key><value>{_e(v)}</value></item>" for k, v in tags.items())
    return f"<tagSet>{items}</tagSet>"


def _snapshot_xml(s: _Snapshot, now: float) -> str:
    alias = f"<ownerAlias>{_e(s.alias)}</ownerAlias>" if s.alias else ""
    return (
        f"<item><snapshotId>{s.id}</snapshotId><volumeId>{s.volume_id}</volumeId>"
        f"<status>{s.state(now)}</status><startTime>{_iso(s.created)}</startTime>"
        f"<progress>{s.progress(now)}</progress><ownerId>{s.owner}</ownerId>{alias}"
        f"<volumeSize>{s.size}</volumeSize><description>{_e(s.description)}</description>"
        f"<encrypted>{_b(s.encrypted)}</encrypted><storageTier>standard</storageTier>"
        f"{_tag_set(s.tags)}</item>"
    )


def _image_xml(i: _Image, now: float) -> str:
    alias = f"<imageOwnerAlias>{_e(i.alias)}</imageOwnerAlias>" if i.alias else ""
    mappings = "".join(
        f"<item><deviceName>{device}</deviceName><ebs><snapshotId>{snap}</snapshotId>"
        f"<volumeSize>{size}</volumeSize><deleteOnTermination>true</deleteOnTermination>"
        f"<volumeType>gp3</volumeType><encrypted>false</encrypted></ebs></item>"
        for device, snap, size in i.mappings
    )
    root = i.mappings[0][0] if i.mappings else "/dev/xvda"
    source = f"<sourceInstanceId>{i.source_instance}</sourceInstanceId>" if i.source_instance else ""
    return (
        f"<item><imageId>{i.id}</imageId><imageLocation>{i.owner}/{_e(i.name)}</imageLocation>"
        f"<imageState>{i.state(now)}</imageState><imageOwnerId>{i.owner}</imageOwnerId>{alias}"
        f"<creationDate>{_iso(i.created)}</creationDate><isPublic>{_b(i.public)}</isPublic>"
        f"<architecture>x86_64</architecture><imageType>machine</imageType>"
        f"<name>{_e(i.name)}</name><description>{_e(i.description)}</description>"
        f"<rootDeviceType>ebs</rootDeviceType><rootDeviceName>{root}</rootDeviceName>"
        f"<blockDeviceMapping>{mappings}</blockDeviceMapping><virtualizationType>hvm</virtualizationType>"
        f"<hypervisor>xen</hypervisor>{source}{_tag_set(i.tags)}"
        f"<deregistrationProtection>{_e(i.protection or 'disabled')}</deregistrationProtection></item>"
    )


def _volume_xml(v: _Volume, now: float) -> str:
    attachments = "".join(
        f"<item><volumeId>{v.id}</volumeId><instanceId>{inst}</instanceId><device>{device}</device>"
        f"<status>attached</status><attachTime>{_iso(v.created)}</attachTime>"
        f"<deleteOnTermination>true</deleteOnTermination></item>"
        for inst, device in v.attachments
    )
    return (
        f"<item><volumeId>{v.id}</volumeId><size>{v.size}</size><snapshotId>{v.snapshot_id}</snapshotId>"
        f"<availabilityZone>{v.az}</availabilityZone><status>{v.state(now)}</status>"
        f"<createTime>{_iso(v.created)}</createTime><attachmentSet>{attachments}</attachmentSet>"
        f"<volumeType>{v.volume_type}</volumeType><encrypted>false</encrypted>"
        f"<multiAttachEnabled>false</multiAttachEnabled>{_tag_set(v.tags)}</item>"
    )


def _instance_xml(i: _Instance, now: float) -> str:
    devices = "".join(
        f"<item><deviceName>{device}</deviceName><ebs><volumeId>{vol}</volumeId><status>attached</status>"
        f"<attachTime>{_iso(i.created)}</attachTime><deleteOnTermination>true</deleteOnTermination></ebs></item>"
        for device, vol in i.volumes
    )
    root = i.volumes[0][0] if i.volumes else "/dev/xvda"
    return (
        f"<item><reservationId>r-{i.id[2:]}</reservationId><ownerId>{i.owner}</ownerId><groupSet/>"
        f"<instancesSet><item><instanceId>{i.id}</instanceId><imageId>{i.image_id}</imageId>"
        f"<instanceState><code>{_STATE_CODES.get(i.status, 0)}</code><name>{i.status}</name></instanceState>"
        f"<privateDnsName/><dnsName/><reason/><amiLaunchIndex>0</amiLaunchIndex>"
        f"<instanceType>{i.itype}</instanceType><launchTime>{_iso(i.created)}</launchTime>"
        f"<placement><availabilityZone>{i.az}</availabilityZone><tenancy>default</tenancy></placement>"
        f"<monitoring><state>disabled</state></monitoring><rootDeviceType>ebs</rootDeviceType>"
        f"<rootDeviceName>{root}</rootDeviceName><blockDeviceMapping>{devices}</blockDeviceMapping>"
        f"<virtualizationType>hvm</virtualizationType><architecture>x86_64</architecture>"
        f"{_tag_set(i.tags)}</item></instancesSet></item>"
    )


def _ok(action: str, body: str) -> tuple[int, str]:
    return 200, (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
        f"<requestId>{uuid.uuid4()}</requestId>{body}</{action}Response>"
    )


def _error(code: str, message: str, status: int) -> tuple[int, str]:
    return status, (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{_e(code)}</Code><Message>{_e(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    )


def _sts_ok(action: str, body: str) -> tuple[int, str]:
    return 200, (
        f'<{action}Response xmlns="{STS_NS}"><{action}Result>{body}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    )


def _sts_error(code: str, message: str, status: int) -> tuple[int, str]:
    # STS speaks the plain Query protocol: <ErrorResponse><Error>, not EC2's <Response><Errors>.
    kind = "Receiver" if status >= 500 else "Sender"
    return status, (
        f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>{kind}</Type><Code>{_e(code)}</Code>'
        f"<Message>{_e(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


def _rbin_error(code: str, message: str, status: int) -> tuple[int, str]:
    return status, json.dumps({"__type": code, "message": message})


def _protected(protection: str, now: float) -> bool:
    """Whether DescribeImages' DeregistrationProtection refuses a deregistration now."""
    if protection in ("enabled", "enabled-with-cooldown"):
        return True
    if protection.startswith("disabled-until "):
        until = datetime.fromisoformat(protection.split(" ", 1)[1].replace("Z", "+00:00")).timestamp()
        return until > now
    return False


_ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")


@dataclass(frozen=True)
class _Caller:
    """Whom an access key speaks for: the account it acts in and the ARN STS names it by."""

    account: str
    arn: str


_OWN = _Caller(ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:user/fake")


# --- the fake ------------------------------------------------------------------------------------

_DROP = (0, "")  # sentinel: close the connection without answering
FAULTS = ("RequestLimitExceeded", "InternalError", "drop")

_DESCRIBE = {
    "DescribeSnapshots": ("snapshot", "snapshotSet", _snapshot_xml, "SnapshotId"),
    "DescribeImages": ("image", "imagesSet", _image_xml, "ImageId"),
    "DescribeVolumes": ("volume", "volumeSet", _volume_xml, "VolumeId"),
    "DescribeInstances": ("instance", "reservationSet", _instance_xml, "InstanceId"),
}


def _interned(cache: dict[tuple, dict[str, str]], tags: Mapping[str, str]) -> dict[str, str]:
    # Seeded records with equal tags share one dict (CreateTags copies before
    # changing one): 100,000 snapshots rarely carry 100,000 distinct tag sets.
    key = tuple(tags.items())
    found = cache.get(key)
    if found is None:
        found = cache[key] = dict(tags)
    return found


class FakeEc2:
    """The fake EC2 endpoint.  `start()` it and point AWS_ENDPOINT_URL at the URL it returns.

    `speedup` multiplies every refill rate and divides every simulated delay.
    `throttle_share`, `error_share` and `drop_share` are the shares of EC2
    requests answered with a random 503 RequestLimitExceeded, a 500
    InternalError, or a dropped connection; `fault_after` is the share of the
    500s and drops that strike after the action took effect.  `pending_for`
    is how long (simulated seconds) created snapshots and images stay pending.
    `latency` is wall-clock seconds added to every API response (not scaled by
    `speedup`): a slow EC2, as seen by a client waiting on its answer.
    `clock` (monotonic seconds) drives the token buckets; tests pass a frozen
    one to make throttling deterministic.  `competitor_share` (0 to 0.9) is
    the share of every bucket's refill another client of the account spends,
    steadily: the bucket starts full, as a bucket another client only nibbles
    at is, and refills at the rest of its rate.

    Every seeding and inspecting method takes `account=` (default
    `ACCOUNT_ID`, the account of any key STS did not issue): each account's
    regions are its own.  `in_account(id)` is the same API bound to one
    account, for code written against a single account.
    """

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        limits: Mapping[str, Limit] | None = None,
        throttling: bool = True,
        throttle_share: float = 0.0,
        error_share: float = 0.0,
        drop_share: float = 0.0,
        fault_after: float = 0.0,
        pending_for: float = 0.0,
        latency: float = 0.0,
        seed: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
        competitor_share: float = 0.0,
    ):
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        if not 0 <= competitor_share <= 0.9:
            raise ValueError("competitor_share is a share between 0 and 0.9")
        self.competitor_share = competitor_share
        if latency < 0:
            raise ValueError("latency must not be negative")
        if throttle_share + error_share + drop_share > 1:
            raise ValueError("fault shares add up to more than 1")
        self.speedup = speedup
        self.limits = {**LIMITS, **(limits or {})}
        self.throttling = throttling
        self.throttle_share, self.error_share, self.drop_share = throttle_share, error_share, drop_share
        self.fault_after = fault_after
        self.pending_for = pending_for
        self.latency = latency
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # stats, buckets, rng, region map, keys
        self._regions: dict[tuple[str, str], _Region] = {}  # (account, region) → its inventory
        self._seq = itertools.count(1)
        self._ids: Counter[str] = Counter()
        self._buckets: dict[tuple[str, str, str, str], TokenBucket] = {}  # (account, region, action, category)
        self._keys: dict[str, _Caller] = {}  # access key IDs AssumeRole issued
        self._denied: dict[str, str] = {}  # role ARN → why AssumeRole refuses it
        self._external_ids: dict[str, str] = {}  # role ARN → the external ID its trust policy asks for
        self._scheduled: defaultdict[str, list[tuple[str, bool]]] = defaultdict(list)
        self.reset_stats()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; returns the endpoint URL."""
        self._server = _Server((host, port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-ec2", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeEc2 is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeEc2:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- state --

    def region(self, name: str, account: str = ACCOUNT_ID) -> _Region:
        with self._lock:
            region = self._regions.get((account, name))
            if region is None:
                region = self._regions[(account, name)] = _Region(name, self._seq, account)
            return region

    def in_account(self, account: str) -> AccountView:
        """This fake's seeding and inspecting API, acting in `account`."""
        return AccountView(self, account)

    @property
    def accounts(self) -> list[str]:
        """Every account that has a region (seeded or called), ACCOUNT_ID first."""
        with self._lock:
            known = {account for account, _ in self._regions}
        return sorted(known, key=lambda a: (a != ACCOUNT_ID, a))

    def deny_role(self, role_arn: str, why: str = "") -> None:
        """Make AssumeRole of `role_arn` answer AccessDenied (403), as a role that does not trust the caller."""
        with self._lock:
            self._denied[role_arn] = why

    def require_external_id(self, role_arn: str, external_id: str) -> None:
        """Make AssumeRole of `role_arn` answer AccessDenied unless it passes this ExternalId."""
        with self._lock:
            self._external_ids[role_arn] = external_id

    def caller(self, access_key: str) -> _Caller:
        """Whom a request signed with `access_key` speaks for (keys STS did not issue: ACCOUNT_ID)."""
        with self._lock:
            return self._keys.get(access_key, _OWN)

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids[prefix] += 1
            n = self._ids[prefix]
        return f"{prefix}-{n:017x}"

    def _wall(self) -> float:
        return time.time()

    def _ready_at(self, now: float) -> float:
        return now + self.pending_for / self.speedup

    def reset(self) -> None:
        """Forget every region's inventory, the buckets, scheduled faults, denied roles and the stats.

        Keys AssumeRole issued stay valid (a client holding them still acts in their account).
        """
        with self._lock:
            self._regions.clear()
            self._buckets.clear()
            self._scheduled.clear()
            self._denied.clear()
            self._external_ids.clear()
        self.reset_stats()

    def reset_stats(self) -> None:
        with self._lock:
            self._calls: Counter[tuple[str, str, str]] = Counter()  # (account, region, action)
            self._throttled: Counter[tuple[str, str, str]] = Counter()
            self._assumed: Counter[tuple[str, str]] = Counter()  # (target account, "assumed" | "denied")
            self._faults: Counter[str] = Counter()
            self._errors: Counter[str] = Counter()
            self._deletions: Counter[str] = Counter()

    def reset_buckets(self) -> None:
        with self._lock:
            self._buckets.clear()

    def stats(self) -> dict:
        """Counters since the last reset, as plain JSON-able data.

        calls / throttled: by action (every request received; bucket-empty
        503s); by_region: the same per region (every account's together);
        by_account: per account the same three, and `assumed` / `denied`, the
        AssumeRole calls into it that STS granted and refused (an AssumeRole
        itself counts among the calls of the account that asked, usually
        ACCOUNT_ID); faults: injected, by kind; errors: EC2 and STS error codes
        returned (not injected ones); deletions: DeleteSnapshot/DeregisterImage
        requests that reached the inventory, by ID (IDs are unique across
        accounts); repeated_deletions: the IDs asked to be deleted more than
        once.
        """
        with self._lock:
            calls: Counter[str] = Counter()
            throttled: Counter[str] = Counter()
            by_region: dict[str, dict[str, dict[str, int]]] = {}
            by_account: dict[str, dict] = {}

            def account_entry(account: str) -> dict:
                return by_account.setdefault(
                    account, {"calls": {}, "throttled": {}, "by_region": {}, "assumed": 0, "denied": 0}
                )

            for kind, counter, total in (("calls", self._calls, calls), ("throttled", self._throttled, throttled)):
                for (account, region, action), n in counter.items():
                    total[action] += n
                    per_region = by_region.setdefault(region, {"calls": {}, "throttled": {}})[kind]
                    per_region[action] = per_region.get(action, 0) + n
                    entry = account_entry(account)
                    entry[kind][action] = entry[kind].get(action, 0) + n
                    entry["by_region"].setdefault(region, {"calls": {}, "throttled": {}})[kind][action] = n
            for (account, outcome), n in self._assumed.items():
                account_entry(account)[outcome] = n
            return {
                "calls": dict(calls),
                "throttled": dict(throttled),
                "by_region": by_region,
                "by_account": by_account,
                "faults": dict(self._faults),
                "errors": dict(self._errors),
                "deletions": dict(self._deletions),
                "repeated_deletions": {k: n for k, n in self._deletions.items() if n > 1},
            }

    def ids(self, region: str, kind: str = "snapshot", *, account: str = ACCOUNT_ID) -> set[str]:
        """IDs of one kind (snapshot, image, volume, instance) now in a region of an account."""
        r = self.region(region, account)
        with r.lock:
            return set(r.table(kind).by_id)

    def count(self, region: str, kind: str = "snapshot", *, account: str = ACCOUNT_ID) -> int:
        r = self.region(region, account)
        with r.lock:
            return len(r.table(kind))

    # -- seeding (straight into memory, no API calls, no throttling) --

    def seed_snapshots(
        self,
        region: str,
        n: int,
        *,
        tags: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
        volumes: int | Sequence[str] = 100,
        newest: datetime | None = None,
        spacing: timedelta = timedelta(hours=1),
        size_gib: int = 8,
        description: str | Callable[[int], str] = "",
        owner_id: str | None = None,
        owner_alias: str = "",
        public: bool = False,
        encrypted: bool = False,
        failed: bool = False,
        account: str = ACCOUNT_ID,
    ) -> list[str]:
        """Add n completed snapshots to a region of `account`, one every `spacing` back from `newest` (default now).

        `tags` is one mapping for all (shared until a CreateTags changes one)
        or a function of the index; `volumes` is a pool size of synthetic
        volume IDs or a list of IDs, used round-robin; `owner_id` defaults to
        `account`; `failed` makes them `error` snapshots instead.  Returns the
        new IDs, oldest first.
        """
        owner_id = owner_id or account
        if isinstance(volumes, int):
            pool = [f"vol-{0xF0000000 + i:017x}" for i in range(max(1, volumes))]
        else:
            pool = list(volumes) or ["vol-ffffffff"]
        shared = None if callable(tags) else dict(tags or {})
        interned: dict[tuple, dict[str, str]] = {}
        end = (newest or datetime.now(UTC)).timestamp()
        step = spacing.total_seconds()
        r = self.region(region, account)
        ids = []
        with r.lock:
            for i in range(n):
                s = _Snapshot()
                s.id = self._new_id("snap")
                s.tags = _interned(interned, tags(i)) if callable(tags) else shared
                s.created = s.ready_at = end - (n - 1 - i) * step
                s.volume_id = pool[i % len(pool)]
                s.size = size_gib
                s.description = description(i) if callable(description) else description
                s.owner, s.alias, s.public, s.encrypted, s.failed = owner_id, owner_alias, public, encrypted, failed
                r.snapshots.add(s)
                ids.append(s.id)
        return ids

    def seed_volumes(
        self,
        region: str,
        n: int,
        *,
        tags: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
        size_gib: int = 8,
        az: str | None = None,
        volume_type: str = "gp3",
        account: str = ACCOUNT_ID,
    ) -> list[str]:
        """Add n available volumes to a region of `account`; returns their IDs."""
        r = self.region(region, account)
        now = self._wall()
        shared = None if callable(tags) else dict(tags or {})
        ids = []
        with r.lock:
            for i in range(n):
                ids.append(
                    self._add_volume(
                        r, now, size_gib, az or f"{region}a", volume_type, tags(i) if callable(tags) else shared
                    ).id
                )
        return ids

    def _add_volume(
        self, r: _Region, now: float, size: int, az: str, vtype: str, tags, snapshot_id: str = ""
    ) -> _Volume:
        v = _Volume()
        v.id = self._new_id("vol")
        v.tags = dict(tags or {})
        v.created = v.ready_at = now
        v.size, v.az, v.volume_type, v.snapshot_id = size, az, vtype, snapshot_id
        v.attachments, v.status = [], "available"
        r.volumes.add(v)
        return v

    def seed_instances(
        self,
        region: str,
        n: int,
        *,
        tags: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
        volumes_per_instance: int = 1,
        size_gib: int = 8,
        image_id: str = "ami-0000000000000000a",
        state: str = "running",
        instance_type: str = "t3.micro",
        account: str = ACCOUNT_ID,
    ) -> list[str]:
        """Add n instances to a region of `account`, each with its own attached volumes; returns the instance IDs."""
        r = self.region(region, account)
        now = self._wall()
        az = f"{region}a"
        ids = []
        with r.lock:
            for i in range(n):
                inst = _Instance()
                inst.id = self._new_id("i")
                inst.tags = dict(tags(i) if callable(tags) else tags or {})
                inst.created = inst.ready_at = now
                inst.image_id, inst.status, inst.itype, inst.az, inst.volumes = image_id, state, instance_type, az, []
                inst.owner = account
                for d in range(volumes_per_instance):
                    device = "/dev/xvda" if d == 0 else f"/dev/sd{chr(ord('f') + d - 1)}"
                    vol = self._add_volume(r, now, size_gib, az, "gp3", {})
                    vol.attachments.append((inst.id, device))
                    inst.volumes.append((device, vol.id))
                r.instances.add(inst)
                ids.append(inst.id)
        return ids

    def register_image(
        self,
        region: str,
        snapshot_ids: Sequence[str],
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        owner_id: str | None = None,
        owner_alias: str = "",
        public: bool = False,
        created: datetime | None = None,
        account: str = ACCOUNT_ID,
    ) -> str:
        """Register an image backed by existing snapshots of `account` (they become InUse); returns its ID."""
        r = self.region(region, account)
        with r.lock:
            for snap in snapshot_ids:
                if r.snapshots.get(snap) is None:
                    raise KeyError(f"{snap} is not in {region}")
            return self._add_image(
                r,
                name or f"image-{self._ids['ami'] + 1}",
                [(self._device(d), s, r.snapshots.get(s).size) for d, s in enumerate(snapshot_ids)],
                dict(tags or {}),
                description,
                (created.timestamp() if created else self._wall()),
                owner_id=owner_id or account,
                alias=owner_alias,
                public=public,
            ).id

    @staticmethod
    def _device(index: int) -> str:
        return "/dev/xvda" if index == 0 else f"/dev/sd{chr(ord('f') + index - 1)}"

    def seed_images(
        self,
        region: str,
        n: int,
        *,
        tags: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
        snapshot_tags: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
        snapshots_per_image: int = 1,
        newest: datetime | None = None,
        spacing: timedelta = timedelta(days=1),
        owner_id: str | None = None,
        owner_alias: str = "",
        public: bool = False,
        name_prefix: str = "image",
        account: str = ACCOUNT_ID,
    ) -> list[str]:
        """Add n available images to a region of `account`, each backed by fresh snapshots; returns the image IDs."""
        end = (newest or datetime.now(UTC)).timestamp()
        step = spacing.total_seconds()
        ids = []
        for i in range(n):
            created = datetime.fromtimestamp(end - (n - 1 - i) * step, UTC)
            snaps = self.seed_snapshots(
                region,
                snapshots_per_image,
                tags=snapshot_tags(i) if callable(snapshot_tags) else snapshot_tags,
                volumes=1,
                newest=created,
                spacing=timedelta(0),
                owner_id=owner_id,
                owner_alias=owner_alias,
                public=public,
                account=account,
            )
            ids.append(
                self.register_image(
                    region,
                    snaps,
                    name=f"{name_prefix}-{self._ids['ami'] + 1}",
                    tags=tags(i) if callable(tags) else tags,
                    owner_id=owner_id,
                    owner_alias=owner_alias,
                    public=public,
                    created=created,
                    account=account,
                )
            )
        return ids

    def _add_image(
        self,
        r: _Region,
        name,
        mappings,
        tags,
        description,
        created,
        *,
        ready_at=None,
        owner_id=None,
        alias="",
        public=False,
        source_instance="",
        image_id="",
    ) -> _Image:
        if name in r.image_names:
            raise Ec2Error(
                "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {r.image_names[name]}"
            )
        img = _Image()
        img.id = image_id or self._new_id("ami")
        img.name, img.description, img.tags, img.mappings = name, description, tags, mappings
        img.created = created
        img.ready_at = created if ready_at is None else ready_at
        img.owner, img.alias, img.public, img.source_instance = owner_id or r.account, alias, public, source_instance
        img.protection = ""
        r.images.add(img)
        r.image_names[name] = img.id
        for snap in img.snapshot_ids:
            r.backing[snap].add(img.id)
        return img

    # -- the wire ---------------------------------------------------------------------------------

    def handle(self, region: str, service: str, params: Mapping[str, str], access_key: str = "") -> tuple[int, str]:
        """Answer one API request signed with `access_key`: (HTTP status, XML body), or _DROP to hang up."""
        action = params.get("Action", "")
        caller = self.caller(access_key)
        account = caller.account
        with self._lock:
            self._calls[(account, region, action or "?")] += 1
        if service == "sts":
            return self._sts(caller, action, params)
        if service == "autoscaling":
            return self._autoscaling(action)
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            return self._client_error(
                Ec2Error("InvalidAction", f"The action {action} is not valid for this web service.")
            )
        if self.throttling and not self._take(region, action, params, account):
            with self._lock:
                self._throttled[(account, region, action)] += 1
            return _error("RequestLimitExceeded", "Request limit exceeded.", 503)
        fault, after = self._roll(action)
        if fault == "RequestLimitExceeded":
            return _error("RequestLimitExceeded", "Request limit exceeded.", 503)
        if fault and not after:
            return self._fault(fault)
        try:
            if _bool_param(params, "DryRun"):
                raise Ec2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
            result = handler(self.region(region, account), params)
        except Ec2Error as exc:
            result = self._client_error(exc)
        return self._fault(fault) if fault else result

    @staticmethod
    def _autoscaling(action: str) -> tuple[int, str]:
        """Auto Scaling, as far as "who uses this AMI?" asks it: the fake has no groups and no launch configurations."""
        members = {
            "DescribeAutoScalingGroups": "AutoScalingGroups",
            "DescribeLaunchConfigurations": "LaunchConfigurations",
        }
        if action not in members:
            return _sts_error("InvalidAction", f"The action {action} is not valid for this web service.", 400)
        return 200, (
            f'<{action}Response xmlns="{AUTOSCALING_NS}"><{action}Result><{members[action]}/></{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
        )

    def _do_DescribeLaunchTemplates(self, r, params):
        return _ok("DescribeLaunchTemplates", "<launchTemplates/>")  # the fake has none

    def _client_error(self, exc: Ec2Error) -> tuple[int, str]:
        with self._lock:
            self._errors[exc.code] += 1
        return _error(exc.code, exc.message, exc.status)

    def _take(self, region: str, action: str, params: Mapping[str, str], account: str = ACCOUNT_ID) -> bool:
        cat = category(action, params)
        key = (account, region, action, cat)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                left = self.speedup * (1 - self.competitor_share)  # what another client leaves of the refill
                bucket = self._buckets[key] = TokenBucket(self.limits[cat], left, now)
            return bucket.take(now)

    def fail_next(self, action: str, fault: str = "InternalError", *, times: int = 1, after: bool = False) -> None:
        """Inject `fault` (RequestLimitExceeded, InternalError or drop) into the next `times` calls of `action`.

        `after=True` lets the action take effect before the 500 or the drop,
        as when a response is lost on its way back.
        """
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
        with self._lock:
            self._scheduled[action].extend([(fault, after)] * times)

    def _roll(self, action: str) -> tuple[str, bool]:
        with self._lock:
            queue = self._scheduled.get(action)
            if queue:
                fault, after = queue.pop(0)
                self._faults[fault] += 1
                return fault, after and fault != "RequestLimitExceeded"
        if not (self.throttle_share or self.error_share or self.drop_share):
            return "", False
        with self._lock:
            roll, when = self._rng.random(), self._rng.random()
            if roll < self.throttle_share:
                fault = "RequestLimitExceeded"
            elif roll < self.throttle_share + self.error_share:
                fault = "InternalError"
            elif roll < self.throttle_share + self.error_share + self.drop_share:
                fault = "drop"
            else:
                return "", False
            self._faults[fault] += 1
        return fault, when < self.fault_after

    @staticmethod
    def _fault(kind: str) -> tuple[int, str]:
        if kind == "drop":
            return _DROP
        return _error("InternalError", "An internal error has occurred", 500)

    # -- STS --

    def _sts(self, caller: _Caller, action: str, params: Mapping[str, str]) -> tuple[int, str]:
        if action == "GetCallerIdentity":
            session = caller.arn.rsplit("/", 1)[-1]
            user_id = "AIDAFAKEFAKEFAKEFAKE" if caller is _OWN else f"AROAFAKE{caller.account}:{session}"
            return _sts_ok(
                action,
                f"<Arn>{_e(caller.arn)}</Arn><UserId>{_e(user_id)}</UserId><Account>{caller.account}</Account>",
            )
        if action == "AssumeRole":
            try:
                return self._assume_role(caller, params)
            except Ec2Error as exc:
                with self._lock:
                    self._errors[exc.code] += 1
                return _sts_error(exc.code, exc.message, exc.status)
        return _sts_error("InvalidAction", f"Could not find operation {action}", 400)

    def _assume_role(self, caller: _Caller, params: Mapping[str, str]) -> tuple[int, str]:
        """Keys acting in the role's account, valid for DurationSeconds (not enforced: they never expire here)."""
        arn, session = params.get("RoleArn", ""), params.get("RoleSessionName", "")
        match = _ROLE_ARN.fullmatch(arn)
        if not match:
            raise Ec2Error("ValidationError", f"{arn!r} is not a valid role ARN")
        if not _SESSION_NAME.fullmatch(session):
            raise Ec2Error(
                "ValidationError",
                f"Value {session!r} at 'roleSessionName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [\\w+=,.@-]{2,64}",
            )
        try:
            duration = int(params.get("DurationSeconds", "3600"))
        except ValueError:
            raise Ec2Error("ValidationError", "DurationSeconds must be a number") from None
        if not 900 <= duration <= 43200:
            raise Ec2Error("ValidationError", f"DurationSeconds {duration} is outside 900 to 43200")
        account, role = match.group(1), match.group(2)
        with self._lock:
            denied = self._denied.get(arn)
            wanted = self._external_ids.get(arn)
            refused = denied is not None or (wanted is not None and params.get("ExternalId") != wanted)
            self._assumed[(account, "denied" if refused else "assumed")] += 1
            if not refused:
                self._ids["key"] += 1
                # ASIA + the account + a serial: 20 characters, like a real temporary key, and readable in a trace.
                key = f"ASIA{account}{self._ids['key'] % 0x10000:04X}"
                while key in self._keys:
                    self._ids["key"] += 1
                    key = f"ASIA{account}{self._ids['key'] % 0x10000:04X}"
                assumed = f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
                self._keys[key] = _Caller(account, assumed)
        if refused:
            raise Ec2Error(
                "AccessDenied",
                denied or f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {arn}",
                403,
            )
        expires = datetime.now(UTC) + timedelta(seconds=duration)
        return _sts_ok(
            "AssumeRole",
            f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{uuid.uuid4().hex}</SecretAccessKey>"
            f"<SessionToken>{base64.b64encode(uuid.uuid4().bytes * 4).decode()}</SessionToken>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
            f"<AssumedRoleUser><Arn>{_e(assumed)}</Arn>"
            f"<AssumedRoleId>AROAFAKE{account}:{_e(session)}</AssumedRoleId></AssumedRoleUser>",
        )

    # -- describes --

    def _describe(self, action: str, r: _Region, params: Mapping[str, str]) -> tuple[int, str]:
        kind, set_name, render, id_param = _DESCRIBE[action]
        table = r.table(kind)
        now = self._wall()
        filters = _filters(kind, params)
        ids = _members(params, id_param)
        max_results = params.get("MaxResults")
        visible = self._visibility(kind, params, r.account)
        if ids and max_results is not None:
            raise Ec2Error(
                "InvalidParameterCombination",
                f"The parameter {id_param}s cannot be used with the parameter maxResults",
            )
        limit = None
        if max_results is not None:
            try:
                limit = int(max_results)
            except ValueError:
                raise Ec2Error("InvalidParameterValue", f"Invalid value '{max_results}' for maxResults") from None
            if not PAGE_MIN <= limit <= PAGE_MAX:
                raise Ec2Error(
                    "InvalidParameterValue",
                    f"Value ( {limit} ) for parameter maxResults is invalid. "
                    f"Expecting a value between {PAGE_MIN} and {PAGE_MAX}.",
                )
        token = params.get("NextToken")
        with r.lock:
            if ids:
                found, resume = [], None
                for rid in dict.fromkeys(ids):
                    prefix = {"snapshot": "snap", "image": "ami", "volume": "vol", "instance": "i"}[kind]
                    _check_id(rid, prefix)
                    record = table.get(rid)
                    if record is None:
                        raise _not_found(rid)
                    if visible(record) and all(f(record, now) for f in filters):
                        found.append(record)
            else:
                after = _decode_token(kind, token) if token else 0
                found, resume = table.page(after, filters, visible, limit, now)
        body = "".join(render(x, now) for x in found)
        next_token = f"<nextToken>{_encode_token(kind, resume)}</nextToken>" if resume is not None else ""
        return _ok(action, f"<{set_name}>{body}</{set_name}>{next_token}")

    def _visibility(self, kind: str, params: Mapping[str, str], account: str) -> Callable[[_Record], bool]:
        if kind not in ("snapshot", "image"):
            return lambda rec: True
        owners = _members(params, "Owner")
        if owners:
            wanted = {account if o == "self" else o for o in owners}
            aliases = set(owners) - {"self"}
            return lambda rec: rec.owner in wanted or (rec.alias != "" and rec.alias in aliases)
        # Without owners EC2 lists yours and every public one you may use.
        return lambda rec: rec.owner == account or rec.public

    def _do_DescribeSnapshots(self, r, params):
        return self._describe("DescribeSnapshots", r, params)

    def _do_DescribeImages(self, r, params):
        return self._describe("DescribeImages", r, params)

    def _do_DescribeVolumes(self, r, params):
        return self._describe("DescribeVolumes", r, params)

    def _do_DescribeInstances(self, r, params):
        return self._describe("DescribeInstances", r, params)

    def _do_DescribeAvailabilityZones(self, r, params):
        zones = [(f"{r.name}{letter}", f"{r.name}-az{i + 1}") for i, letter in enumerate("abc")]
        names = _members(params, "ZoneName")
        for f in _structs(params, "Filter"):
            values = set(_members(f, "Value"))
            field = {"zone-name": 0, "zone-id": 1}.get(f.get("Name", ""))
            if f.get("Name") == "state":
                zones = zones if "available" in values else []
            elif f.get("Name") == "region-name":
                zones = zones if r.name in values else []
            elif field is not None:
                zones = [z for z in zones if z[field] in values]
            else:
                raise Ec2Error("InvalidParameterValue", f"The filter '{f.get('Name')}' is invalid")
        if names:
            zones = [z for z in zones if z[0] in names]
        body = "".join(
            f"<item><zoneName>{name}</zoneName><zoneId>{zid}</zoneId><zoneState>available</zoneState>"
            f"<optInStatus>opt-in-not-required</optInStatus><regionName>{r.name}</regionName>"
            f"<groupName>{r.name}</groupName><networkBorderGroup>{r.name}</networkBorderGroup>"
            f"<zoneType>availability-zone</zoneType><messageSet/></item>"
            for name, zid in zones
        )
        return _ok("DescribeAvailabilityZones", f"<availabilityZoneInfo>{body}</availabilityZoneInfo>")

    # -- deletes --

    def _count_deletion(self, resource_id: str) -> None:
        with self._lock:
            self._deletions[resource_id] += 1

    def _do_DeleteSnapshot(self, r, params):
        snap_id = params.get("SnapshotId") or ""
        if not snap_id:
            raise Ec2Error("MissingParameter", "The request must contain the parameter snapshotId")
        self._count_deletion(snap_id)
        _check_id(snap_id, "snap")
        with r.lock:
            self._delete_snapshot(r, snap_id)
        return _ok("DeleteSnapshot", "<return>true</return>")

    def _delete_snapshot(self, r: _Region, snap_id: str) -> None:
        snap = r.snapshots.get(snap_id)
        if snap is None or snap.owner != r.account:
            raise _not_found(snap_id)
        users = r.backing.get(snap_id)
        if users:
            raise Ec2Error("InvalidSnapshot.InUse", f"The snapshot {snap_id} is currently in use by {min(users)}")
        lock = r.locks.get(snap_id)
        if lock is not None and lock["expires"] > self._wall():
            # The fake's own code: AWS refuses too, but documents no code for it.
            raise Ec2Error("SnapshotLocked", f"The snapshot {snap_id} is locked and cannot be deleted.")
        r.snapshots.remove(snap_id)
        self._to_bin(r, "EBS_SNAPSHOT", snap)

    def _do_DeregisterImage(self, r, params):
        image_id = params.get("ImageId") or ""
        if not image_id:
            raise Ec2Error("MissingParameter", "The request must contain the parameter imageId")
        self._count_deletion(image_id)
        _check_id(image_id, "ami")
        results = ""
        with r.lock:
            image = r.images.get(image_id)
            if image is None or image.owner != r.account:
                raise _not_found(image_id)
            if _protected(image.protection, self._wall()):
                raise Ec2Error(
                    "InvalidParameterValue", f"The image {image_id} has deregistration protection ({image.protection})."
                )
            r.images.remove(image_id)
            self._to_bin(r, "EC2_IMAGE", image)
            r.image_names.pop(image.name, None)
            for snap in image.snapshot_ids:
                users = r.backing.get(snap)
                if users is not None:
                    users.discard(image_id)
                    if not users:
                        del r.backing[snap]
            if _bool_param(params, "DeleteAssociatedSnapshots"):
                for snap in image.snapshot_ids:
                    self._count_deletion(snap)
                    try:
                        self._delete_snapshot(r, snap)
                        code = "success"
                    except Ec2Error as exc:
                        code = exc.code
                    results += f"<item><snapshotId>{snap}</snapshotId><returnCode>{code}</returnCode></item>"
        extra = f"<deleteSnapshotResultSet>{results}</deleteSnapshotResultSet>" if results else ""
        return _ok("DeregisterImage", f"<return>true</return>{extra}")

    # -- the Recycle Bin, snapshot locks, deregistration protection --

    def add_retention_rule(
        self,
        region: str,
        resource_type: str,
        days: int,
        *,
        tags: Mapping[str, str] | None = None,
        exclude: Mapping[str, str] | None = None,
        description: str = "",
        lock_state: str = "unlocked",
        status: str = "available",
        account: str = ACCOUNT_ID,
    ) -> str:
        """A Recycle Bin rule (EBS_SNAPSHOT or EC2_IMAGE); without `tags` it is region-level. Returns its ID."""
        r = self.region(region, account)
        rule_id = uuid.uuid4().hex[:11]
        pairs = lambda t: [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in (t or {}).items()]  # noqa: E731
        with r.lock:
            r.rules[rule_id] = {
                "Identifier": rule_id,
                "Description": description,
                "ResourceType": resource_type,
                "RetentionPeriod": {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"},
                "ResourceTags": pairs(tags),
                "ExcludeResourceTags": pairs(exclude),
                "Status": status,
                "LockState": lock_state,
                "RuleArn": f"arn:aws:rbin:{region}:{account}:rule/{rule_id}",
            }
        return rule_id

    def lock_snapshot(
        self,
        region: str,
        snapshot_id: str,
        mode: str = "governance",
        *,
        until: datetime,
        cool_off_until: datetime | None = None,
        account: str = ACCOUNT_ID,
    ) -> None:
        """Lock a snapshot until `until` (mode governance or compliance; compliance may cool off first)."""
        r = self.region(region, account)
        with r.lock:
            if r.snapshots.get(snapshot_id) is None:
                raise KeyError(f"{snapshot_id} is not in {region}")
            r.locks[snapshot_id] = {
                "mode": mode,
                "expires": until.timestamp(),
                "created": self._wall(),
                "cool_off_ends": cool_off_until.timestamp() if cool_off_until else None,
            }

    def protect_image(self, region: str, image_id: str, state: str = "enabled", *, account: str = ACCOUNT_ID) -> None:
        """Set an AMI's deregistration protection as DescribeImages shows it ("enabled", "disabled-until …", …)."""
        r = self.region(region, account)
        with r.lock:
            image = r.images.get(image_id)
            if image is None:
                raise KeyError(f"{image_id} is not in {region}")
            image.protection = state

    def in_bin(self, region: str, *, account: str = ACCOUNT_ID) -> set[str]:
        """IDs in the region's Recycle Bin now."""
        r = self.region(region, account)
        with r.lock:
            self._purge(r)
            return set(r.bin)

    def _covering(self, r: _Region, resource_type: str, tags: Mapping[str, str]) -> int:
        """The retention (days) a deleted item of this type and these tags gets: the longest covering rule's, or 0."""

        def has(pairs) -> bool:
            return any(
                p["ResourceTagKey"] in tags and p["ResourceTagValue"] in ("", tags[p["ResourceTagKey"]]) for p in pairs
            )

        days = [
            rule["RetentionPeriod"]["RetentionPeriodValue"]
            for rule in r.rules.values()
            if rule["ResourceType"] == resource_type
            and rule["Status"] == "available"
            and (has(rule["ResourceTags"]) if rule["ResourceTags"] else not has(rule["ExcludeResourceTags"]))
        ]
        return max(days, default=0)

    def _to_bin(self, r: _Region, resource_type: str, record: _Record) -> None:
        days = self._covering(r, resource_type, record.tags or {})
        if days:
            now = self._wall()
            r.bin[record.id] = (record, now, now + days * 86400)

    def _purge(self, r: _Region) -> None:
        now = self._wall()
        for rid in [rid for rid, (_, _, purged) in r.bin.items() if purged <= now]:
            del r.bin[rid]

    def _bin_list(self, action: str, r: _Region, params, cls, id_param: str, set_name: str, render) -> tuple:
        ids = _members(params, id_param)
        with r.lock:
            self._purge(r)
            entries = [(rid, e) for rid, e in r.bin.items() if isinstance(e[0], cls)]
            for rid in ids:
                if rid not in r.bin:
                    raise _not_found(rid)
            if ids:
                entries = [(rid, e) for rid, e in entries if rid in ids]
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or len(entries) or 1)
        page = entries[start : start + size]
        more = f"<nextToken>{start + size}</nextToken>" if start + size < len(entries) else ""
        body = "".join(render(rec, entered, purged) for _, (rec, entered, purged) in page)
        return _ok(action, f"<{set_name}>{body}</{set_name}>{more}")

    def _do_ListSnapshotsInRecycleBin(self, r, params):
        def render(s, entered, purged):
            return (
                f"<item><snapshotId>{s.id}</snapshotId><recycleBinEnterTime>{_iso(entered)}</recycleBinEnterTime>"
                f"<recycleBinExitTime>{_iso(purged)}</recycleBinExitTime>"
                f"<description>{_e(s.description)}</description><volumeId>{s.volume_id}</volumeId></item>"
            )

        return self._bin_list("ListSnapshotsInRecycleBin", r, params, _Snapshot, "SnapshotId", "snapshotSet", render)

    def _do_ListImagesInRecycleBin(self, r, params):
        def render(i, entered, purged):
            return (
                f"<item><imageId>{i.id}</imageId><name>{_e(i.name)}</name>"
                f"<description>{_e(i.description)}</description>"
                f"<recycleBinEnterTime>{_iso(entered)}</recycleBinEnterTime>"
                f"<recycleBinExitTime>{_iso(purged)}</recycleBinExitTime></item>"
            )

        return self._bin_list("ListImagesInRecycleBin", r, params, _Image, "ImageId", "imageSet", render)

    def _from_bin(self, r: _Region, rid: str, cls) -> _Record:
        with r.lock:
            self._purge(r)
            entry = r.bin.get(rid)
            if entry is None or not isinstance(entry[0], cls):
                raise _not_found(rid)
            del r.bin[rid]
            return entry[0]

    def _do_RestoreSnapshotFromRecycleBin(self, r, params):
        snap_id = params.get("SnapshotId") or ""
        _check_id(snap_id, "snap")
        snap = self._from_bin(r, snap_id, _Snapshot)
        with r.lock:
            r.snapshots.add(snap)
        body = _snapshot_xml(snap, self._wall())[len("<item>") : -len("</item>")]
        return _ok("RestoreSnapshotFromRecycleBin", body)

    def _do_RestoreImageFromRecycleBin(self, r, params):
        image_id = params.get("ImageId") or ""
        _check_id(image_id, "ami")
        image = self._from_bin(r, image_id, _Image)
        with r.lock:
            r.images.add(image)
            r.image_names[image.name] = image.id
            for snap in image.snapshot_ids:
                r.backing[snap].add(image.id)
        return _ok("RestoreImageFromRecycleBin", "<return>true</return>")

    def _lock_state(self, lock: dict, now: float) -> str:
        if lock["expires"] <= now:
            return "expired"
        if lock["mode"] == "compliance" and lock["cool_off_ends"] and lock["cool_off_ends"] > now:
            return "compliance-cooloff"
        return lock["mode"]

    def _do_LockSnapshot(self, r, params):
        snap_id = params.get("SnapshotId") or ""
        _check_id(snap_id, "snap")
        mode = params.get("LockMode") or ""
        if mode not in ("governance", "compliance"):
            raise Ec2Error("InvalidParameterValue", f"Invalid lock mode '{mode}'")
        now = self._wall()
        if params.get("ExpirationDate"):
            expires = datetime.fromisoformat(params["ExpirationDate"].replace("Z", "+00:00")).timestamp()
        else:
            expires = now + int(params.get("LockDuration") or 1) * 86400
        cool = int(params.get("CoolOffPeriod") or 0) * 3600
        with r.lock:
            if r.snapshots.get(snap_id) is None:
                raise _not_found(snap_id)
            lock = {"mode": mode, "expires": expires, "created": now, "cool_off_ends": now + cool if cool else None}
            r.locks[snap_id] = lock
        return _ok(
            "LockSnapshot",
            f"<snapshotId>{snap_id}</snapshotId><lockState>{self._lock_state(lock, now)}</lockState>"
            f"<lockExpiresOn>{_iso(expires)}</lockExpiresOn>",
        )

    def _do_DescribeLockedSnapshots(self, r, params):
        now = self._wall()
        ids = set(_members(params, "SnapshotId"))
        states: set[str] | None = None
        for f in _structs(params, "Filter"):
            if f.get("Name") != "lock-state":
                raise Ec2Error("InvalidParameterValue", f"The filter '{f.get('Name')}' is invalid")
            states = set(_members(f, "Value"))
        with r.lock:
            found = [
                (sid, lock, self._lock_state(lock, now))
                for sid, lock in r.locks.items()
                if r.snapshots.get(sid) is not None and (not ids or sid in ids)
            ]
        found = [f for f in found if states is None or f[2] in states]
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or len(found) or 1)
        page = found[start : start + size]
        more = f"<nextToken>{start + size}</nextToken>" if start + size < len(found) else ""
        body = "".join(
            f"<item><ownerId>{r.account}</ownerId><snapshotId>{sid}</snapshotId><lockState>{state}</lockState>"
            f"<lockCreatedOn>{_iso(lock['created'])}</lockCreatedOn><lockExpiresOn>{_iso(lock['expires'])}</lockExpiresOn>"
            + (
                f"<coolOffPeriodExpiresOn>{_iso(lock['cool_off_ends'])}</coolOffPeriodExpiresOn>"
                if lock["cool_off_ends"]
                else ""
            )
            + "</item>"
            for sid, lock, state in page
        )
        return _ok("DescribeLockedSnapshots", f"<snapshotSet>{body}</snapshotSet>{more}")

    def _do_EnableImageDeregistrationProtection(self, r, params):
        state = "enabled-with-cooldown" if _bool_param(params, "WithCooldown") else "enabled"
        self._set_protection(r, params.get("ImageId") or "", lambda old: state)
        return _ok("EnableImageDeregistrationProtection", "<return>true</return>")

    def _do_DisableImageDeregistrationProtection(self, r, params):
        until = _iso(self._wall() + 86400)
        self._set_protection(
            r,
            params.get("ImageId") or "",
            lambda old: f"disabled-until {until}" if old == "enabled-with-cooldown" else "disabled",
        )
        return _ok("DisableImageDeregistrationProtection", "<return>true</return>")

    def _set_protection(self, r: _Region, image_id: str, new: Callable[[str], str]) -> None:
        _check_id(image_id, "ami")
        with r.lock:
            image = r.images.get(image_id)
            if image is None:
                raise _not_found(image_id)
            image.protection = new(image.protection)

    def _do_DescribeImageAttribute(self, r, params):
        image_id = params.get("ImageId") or ""
        _check_id(image_id, "ami")
        attribute = params.get("Attribute") or ""
        with r.lock:
            image = r.images.get(image_id)
            if image is None:
                raise _not_found(image_id)
            if attribute == "launchPermission":
                value = "<launchPermission/>"  # the fake shares nothing
            elif attribute == "deregistrationProtection":
                state = _e(image.protection or "disabled")
                value = f"<deregistrationProtection><value>{state}</value></deregistrationProtection>"
            else:
                raise Ec2Error("InvalidParameterValue", f"Value ({attribute}) for parameter attribute is invalid.")
        return _ok("DescribeImageAttribute", f"<imageId>{image_id}</imageId>{value}")

    # -- rbin: the Recycle Bin's rules (REST-JSON) --

    def rbin(self, region: str, method: str, path: str, body: Mapping, access_key: str = "") -> tuple[int, str]:
        """Answer one Recycle Bin request: ListRules (POST /list-rules) and GetRule (GET /rules/ID)."""
        caller = self.caller(access_key)
        r = self.region(region, caller.account)
        action = "ListRules" if path.startswith("/list-rules") else "GetRule" if path.startswith("/rules/") else "?"
        with self._lock:
            self._calls[(caller.account, region, action)] += 1
        if method == "POST" and action == "ListRules":
            wanted = body.get("ResourceType")
            if wanted not in ("EBS_SNAPSHOT", "EC2_IMAGE", "EBS_VOLUME"):
                return _rbin_error("ValidationException", f"Invalid ResourceType {wanted!r}", 400)
            with r.lock:
                rules = [rule for rule in r.rules.values() if rule["ResourceType"] == wanted]
            start = int(body.get("NextToken") or 0)
            size = int(body.get("MaxResults") or 100)
            page = rules[start : start + size]
            answer: dict = {
                "Rules": [
                    {k: rule[k] for k in ("Identifier", "Description", "RetentionPeriod", "LockState", "RuleArn")}
                    for rule in page
                ]
            }
            if start + size < len(rules):
                answer["NextToken"] = str(start + size)
            return 200, json.dumps(answer)
        if method == "GET" and action == "GetRule":
            rule = r.rules.get(path.rsplit("/", 1)[-1])
            if rule is None:
                return _rbin_error("ResourceNotFoundException", "The specified retention rule does not exist.", 404)
            return 200, json.dumps(rule)
        return _rbin_error("UnknownOperationException", f"{method} {path} is not an operation of this fake", 404)

    # -- creates --

    def _new_snapshot(self, r: _Region, now: float, volume_id: str, size: int, description: str, tags) -> _Snapshot:
        s = _Snapshot()
        s.id = self._new_id("snap")
        s.tags = tags
        s.created, s.ready_at = now, self._ready_at(now)
        s.volume_id, s.size, s.description = volume_id, size, description
        s.owner, s.alias, s.public, s.encrypted, s.failed = r.account, "", False, False, False
        r.snapshots.add(s)
        return s

    def _do_CreateSnapshot(self, r, params):
        volume_id = params.get("VolumeId") or ""
        if not volume_id:
            raise Ec2Error("MissingParameter", "The request must contain the parameter volumeId")
        _check_id(volume_id, "vol")
        tags = _tag_specs(params).get("snapshot", {})
        now = self._wall()
        with r.lock:
            volume = r.volumes.get(volume_id)
            if volume is None:
                raise _not_found(volume_id)
            snap = self._new_snapshot(r, now, volume_id, volume.size, params.get("Description", ""), tags)
        # The create answer always says pending, as EC2's does.
        body = _snapshot_xml(snap, now)[len("<item>") : -len("</item>")].replace(
            f"<status>{snap.state(now)}</status>", "<status>pending</status>"
        )
        return _ok("CreateSnapshot", body)

    def _do_CreateVolume(self, r, params):
        """A volume from a snapshot, `creating` for `pending_for` (simulated) seconds: a slow restore."""
        snapshot_id = params.get("SnapshotId") or ""
        az = params.get("AvailabilityZone") or ""
        if not az:
            raise Ec2Error("MissingParameter", "The request must contain the parameter availabilityZone")
        tags = _tag_specs(params).get("volume", {})
        now = self._wall()
        with r.lock:
            size = int(params.get("Size") or 0)
            if snapshot_id:
                _check_id(snapshot_id, "snap")
                snap = r.snapshots.get(snapshot_id)
                if snap is None:
                    raise _not_found(snapshot_id)
                size = max(size, snap.size)
            volume = self._add_volume(r, now, size or 8, az, params.get("VolumeType") or "gp2", tags, snapshot_id)
            volume.ready_at = self._ready_at(now)
        return _ok("CreateVolume", _volume_xml(volume, now)[len("<item>") : -len("</item>")])

    def _do_DeleteVolume(self, r, params):
        volume_id = params.get("VolumeId") or ""
        _check_id(volume_id, "vol")
        with r.lock:
            volume = r.volumes.get(volume_id)
            if volume is None:
                raise _not_found(volume_id)
            if volume.attachments:
                raise Ec2Error("VolumeInUse", f"Volume {volume_id} is currently attached to {volume.attachments[0][0]}")
            r.volumes.remove(volume_id)
        return _ok("DeleteVolume", "<return>true</return>")

    def _do_CopySnapshot(self, r, params):
        source_region = params.get("SourceRegion") or ""
        source_id = params.get("SourceSnapshotId") or ""
        if not source_region or not source_id:
            raise Ec2Error("MissingParameter", "The request must contain SourceRegion and SourceSnapshotId")
        _check_id(source_id, "snap")
        src_region = self.region(source_region, r.account)
        with src_region.lock:
            source = src_region.snapshots.get(source_id)
            if source is None or not (source.owner == r.account or source.public):
                raise _not_found(source_id)
            if source.state(self._wall()) != "completed":
                raise Ec2Error("IncorrectState", f"Snapshot {source_id} is not in the completed state")
            size = source.size
        tags = _tag_specs(params).get("snapshot", {})
        description = params.get("Description") or f"[Copied {source_id} from {source_region}]"
        now = self._wall()
        with r.lock:
            snap = self._new_snapshot(r, now, "vol-ffffffff", size, description, tags)
        return _ok("CopySnapshot", f"<snapshotId>{snap.id}</snapshotId>{_tag_set(tags)}")

    def _do_CreateImage(self, r, params):
        instance_id = params.get("InstanceId") or ""
        name = params.get("Name") or ""
        if not instance_id or not name:
            raise Ec2Error("MissingParameter", "The request must contain the parameters instanceId and name")
        _check_id(instance_id, "i")
        specs = _tag_specs(params)
        now = self._wall()
        with r.lock:
            instance = r.instances.get(instance_id)
            if instance is None:
                raise _not_found(instance_id)
            if name in r.image_names:
                raise Ec2Error(
                    "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {r.image_names[name]}"
                )
            image_id = self._new_id("ami")
            mappings = []
            for device, vol_id in instance.volumes:
                volume = r.volumes.get(vol_id)
                size = volume.size if volume else 8
                snap = self._new_snapshot(
                    r,
                    now,
                    vol_id,
                    size,
                    f"Created by CreateImage({instance_id}) for {image_id}",
                    dict(specs.get("snapshot", {})),
                )
                mappings.append((device, snap.id, size))
            image = self._add_image(
                r,
                name,
                mappings,
                dict(specs.get("image", {})),
                params.get("Description", ""),
                now,
                ready_at=self._ready_at(now),
                source_instance=instance_id,
                image_id=image_id,
            )
        return _ok("CreateImage", f"<imageId>{image.id}</imageId>")

    def _do_CreateTags(self, r, params):
        resources = _members(params, "ResourceId")
        tags = _tags_from(_structs(params, "Tag"))
        if not resources:
            raise Ec2Error("MissingParameter", "The request must contain the parameter resourceIdSet")
        kinds = {"snap": "snapshot", "ami": "image", "vol": "volume", "i": "instance"}
        with r.lock:
            records = []
            for rid in resources:
                prefix = rid.split("-", 1)[0]
                if prefix not in kinds:
                    raise Ec2Error("InvalidID", f"The ID '{rid}' is not valid")
                _check_id(rid, prefix)
                table = r.table(kinds[prefix])
                record = table.get(rid)
                if record is None:
                    raise _not_found(rid)
                records.append((table, record))
            for table, record in records:
                merged = {**(record.tags or {}), **tags}
                if len(merged) > 50:
                    raise Ec2Error("TagLimitExceeded", f"The maximum number of tags for {record.id} is 50")
                record.tags = merged  # copy-on-write: seeded records may share one dict
                table.changed(record)
        return _ok("CreateTags", "<return>true</return>")


class AccountView:
    """One account of a FakeEc2: its seeding and inspecting methods with `account=` filled in.

    `fake.in_account("111111111111").seed_snapshots("us-east-1", 10)` seeds
    that account, so code written for one account (benchmarks/inventory.py)
    seeds and checks any account unchanged.
    """

    _BOUND = frozenset(
        {"region", "ids", "count", "seed_snapshots", "seed_volumes", "seed_instances", "seed_images", "register_image"}
        | {"add_retention_rule", "lock_snapshot", "protect_image", "in_bin"}
    )

    def __init__(self, fake: FakeEc2, account: str):
        self.fake, self.account = fake, account

    def region(self, name: str) -> _Region:
        return self.fake.region(name, self.account)

    def __getattr__(self, name: str):
        if name not in self._BOUND:
            raise AttributeError(f"{name} is not per account; use the FakeEc2 itself")
        return functools.partial(getattr(self.fake, name), account=self.account)


# --- HTTP ----------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # botocore opens up to max_pool_connections at once


def _handler(fake: FakeEc2) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like botocore's connection pool expects
        # Headers and body leave in two writes; with Nagle on, the client's
        # delayed ACK stalls every keep-alive response by ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: str, content_type: str = "text/xml;charset=UTF-8") -> None:
            payload = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _rbin(self, method: str, body: str) -> bool:
            """Answer a Recycle Bin (REST-JSON) request; False when the request is not one."""
            match = _SCOPE.search(self.headers.get("Authorization", ""))
            if not match or match.group(3) != "rbin":
                return False
            key, region, _ = match.groups()
            status, answer = fake.rbin(region, method, self.path, json.loads(body or "{}"), key)
            payload = answer.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if status >= 400:
                self.send_header("x-amzn-ErrorType", json.loads(answer)["__type"])
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return True

        def do_GET(self):
            if self._rbin("GET", ""):
                return
            if self.path.startswith("/_fake/stats"):
                self._send(200, json.dumps(fake.stats()), "application/json")
            elif self.path.startswith("/_fake/ids"):
                query = dict(parse_qsl(self.path.partition("?")[2]))
                ids = sorted(
                    fake.ids(
                        query.get("region", DEFAULT_REGION),
                        query.get("kind", "snapshot"),
                        account=query.get("account", ACCOUNT_ID),
                    )
                )
                self._send(200, json.dumps(ids), "application/json")
            else:
                self._send(*_error("InvalidAction", "The fake serves POST requests only", 400))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            if self.path.startswith("/_fake/"):
                self._send(200, json.dumps(_control(fake, self.path, raw)), "application/json")
                return
            if self._rbin("POST", raw):
                return
            params = dict(parse_qsl(raw, keep_blank_values=True))
            match = _SCOPE.search(self.headers.get("Authorization", ""))
            key, region, service = match.groups() if match else ("", DEFAULT_REGION, "ec2")
            if service == "sts" or params.get("Version") == "2011-06-15":
                service = "sts"
            status, body = fake.handle(region, service, params, key)
            if fake.latency:
                # Each request has its own server thread, so a slow answer holds up no other.
                time.sleep(fake.latency)
            if (status, body) == _DROP:
                self.close_connection = True  # hang up without a word, as a dead connection does
                return
            self._send(status, body)

    return Handler


def _seed(
    fake: FakeEc2 | AccountView, region: str, *, snapshots: int, images: int, volumes: int, instances: int, tags
) -> dict[str, list[str]]:
    """Seed a region; the snapshots are of the seeded volumes when there are any (else of synthetic ones)."""
    made = {"volumes": fake.seed_volumes(region, volumes, tags=tags)}
    made["snapshots"] = fake.seed_snapshots(region, snapshots, tags=tags, volumes=made["volumes"] or 100)
    made["images"] = fake.seed_images(region, images, tags=tags, snapshot_tags=tags)
    made["instances"] = fake.seed_instances(region, instances, tags=tags)
    return made


def _control(fake: FakeEc2, path: str, raw: str) -> dict:
    """POST /_fake/reset-stats, /_fake/reset-buckets, /_fake/deny-role {"arn"},
    /_fake/seed {"region", "account", "snapshots", "tags", …}."""
    if path.startswith("/_fake/reset-stats"):
        fake.reset_stats()
        return {"ok": True}
    if path.startswith("/_fake/reset-buckets"):
        fake.reset_buckets()
        return {"ok": True}
    if path.startswith("/_fake/deny-role"):
        fake.deny_role(json.loads(raw or "{}")["arn"])
        return {"ok": True}
    if path.startswith("/_fake/seed"):
        spec = json.loads(raw or "{}")
        region = spec.get("region", DEFAULT_REGION)
        made = _seed(
            fake.in_account(spec.get("account", ACCOUNT_ID)),
            region,
            snapshots=int(spec.get("snapshots", 0)),
            images=int(spec.get("images", 0)),
            volumes=int(spec.get("volumes", 0)),
            instances=int(spec.get("instances", 0)),
            tags=spec.get("tags"),
        )
        return {k: len(v) for k, v in made.items()}
    return {"error": f"unknown control path {path}"}


# --- CLI -----------------------------------------------------------------------------------------


def _tag_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key or not sep:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fake_ec2",
        description="Serve a fake EC2 Query API (with EC2's rate limits) for benchmarks. "
        "Prints the endpoint URL on the first line; on exit prints the stats as JSON.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--speedup", type=float, default=1.0, help="scale every refill rate and delay")
    parser.add_argument("--no-throttling", action="store_true", help="disable the token buckets")
    parser.add_argument("--throttle-share", type=float, default=0.0, help="share of random 503 RequestLimitExceeded")
    parser.add_argument(
        "--competitor-share", type=float, default=0.0, help="share of every bucket's refill another client spends"
    )
    parser.add_argument("--error-share", type=float, default=0.0, help="share of 500 InternalError")
    parser.add_argument("--drop-share", type=float, default=0.0, help="share of dropped connections")
    parser.add_argument("--fault-after", type=float, default=0.0, help="share of 500s/drops after the action ran")
    parser.add_argument("--pending-for", type=float, default=0.0, help="seconds new snapshots/images stay pending")
    parser.add_argument("--latency", type=float, default=0.0, help="wall-clock seconds added to every API response")
    parser.add_argument("--seed", type=int, default=0, help="random seed for fault injection")
    parser.add_argument("--regions", default=DEFAULT_REGION, help="comma-separated regions to seed")
    parser.add_argument(
        "--snapshots", type=int, default=0, help="snapshots to seed per region (of the seeded volumes, if any)"
    )
    parser.add_argument("--images", type=int, default=0, help="images (each with a backing snapshot) per region")
    parser.add_argument("--volumes", type=int, default=0, help="volumes to seed per region")
    parser.add_argument("--instances", type=int, default=0, help="instances (each with a volume) per region")
    parser.add_argument("--tag", type=_tag_arg, action="append", default=[], help="KEY=VALUE on every seeded item")
    parser.add_argument(
        "--accounts", default="", help="comma-separated 12-digit accounts seeded alike (reached by AssumeRole)"
    )
    parser.add_argument("--deny-role", action="append", default=[], help="a role ARN whose AssumeRole is refused")
    args = parser.parse_args(argv)

    fake = FakeEc2(
        speedup=args.speedup,
        throttling=not args.no_throttling,
        throttle_share=args.throttle_share,
        error_share=args.error_share,
        drop_share=args.drop_share,
        fault_after=args.fault_after,
        pending_for=args.pending_for,
        latency=args.latency,
        seed=args.seed,
        competitor_share=args.competitor_share,
    )
    tags = dict(args.tag)
    accounts = [ACCOUNT_ID, *filter(None, (a.strip() for a in args.accounts.split(",")))]
    for arn in args.deny_role:
        fake.deny_role(arn)
    for account, region in itertools.product(accounts, filter(None, (r.strip() for r in args.regions.split(",")))):
        _seed(
            fake.in_account(account),
            region,
            snapshots=args.snapshots,
            images=args.images,
            volumes=args.volumes,
            instances=args.instances,
            tags=tags,
        )
    url = fake.start(args.host, args.port)
    print(url, flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    fake.stop()
    print(json.dumps(fake.stats(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
