"""Ack latency under slow AWS: Slack's 3-second rule, measured.

The real app over HTTP (waitress, Bolt, our worker pool), a moto server for
AWS with every EC2 call delayed (default 2 s, via a botocore event on the
session: the bot's code is untouched), and the fake Slack Web API.  N signed
slash commands are sent, C at a time; for each we record how long the HTTP
ack took and when its result reached Slack (through its response_url).

    python -m benchmarks.ack_latency --commands 200 --concurrency 50 --delay 2

Targets (issue 6): ack p99 < 100 ms, max < 3 s, no result lost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta


@dataclass
class Sample:
    response_url: str
    sent: float
    acked: float
    status: int


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def run(commands: int, concurrency: int, delay: float, workers: int, timeout: float) -> dict:
    saved = dict(os.environ)
    try:
        return _run(commands, concurrency, delay, workers, timeout)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(commands: int, concurrency: int, delay: float, workers: int, timeout: float) -> dict:
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    import boto3
    from moto.server import ThreadedMotoServer

    from bot import slack_payloads
    from bot.config import Config, with_overrides
    from bot.fakeslack import FakeSlack
    from bot.runtime import Runtime, SlackSettings
    from bot.server import HttpServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    session = boto3.session.Session(region_name="us-east-1")
    volume = session.client("ec2").create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]

    def slow_aws(**_: object) -> None:
        time.sleep(delay)

    session.events.register("before-send.ec2", slow_aws)
    slack = FakeSlack().start()
    secret = "bench-secret"
    config = with_overrides(
        Config(),
        store={"path": os.path.join(tempfile.mkdtemp(prefix="bench-"), "bench.db")},
        aws={"workers": workers, "poll_interval": timedelta(seconds=5)},
    )
    runtime = Runtime(config, SlackSettings("xoxb-bench", secret, api_url=slack.api_url), session=session)
    runtime.start()
    server = HttpServer(runtime.app, host="127.0.0.1", port=0, threads=max(16, concurrency), loop_timeout=0.05)
    server.start()
    url = f"http://127.0.0.1:{server.port}/slack/events"
    lines = [f"snapshot list {volume}", "volume list", f"snapshot status {'snap-0123456789abcdef0'}"]

    def send(i: int) -> Sample:
        command, _, text = lines[i % len(lines)].partition(" ")
        response_url = slack.new_response_url()
        body = slack_payloads.slash_command(f"/{command}", text, "U0BENCH", "C0BENCH", response_url)
        request = urllib.request.Request(
            url, data=body.encode(), method="POST", headers=slack_payloads.signed_headers(secret, body)
        )
        sent = time.monotonic()
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
            status = resp.status
        return Sample(response_url, sent, time.monotonic(), status)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        samples = list(pool.map(send, range(commands)))
    acked_all = time.monotonic()

    wanted = {s.response_url.rsplit("/response", 1)[-1] for s in samples}

    def answered(fake: FakeSlack) -> set[str]:
        return {c.path.rsplit("/response", 1)[-1] for c in fake.calls_of("response_url")} & wanted

    try:
        slack.wait_for(lambda fake: len(answered(fake)) == len(wanted), timeout=timeout)
    except TimeoutError:
        pass
    results_at = {c.path.rsplit("/response", 1)[-1]: c.at for c in slack.calls_of("response_url")}
    runtime.stop()
    server.close()
    slack.stop()
    moto.stop()

    ack_ms = [(s.acked - s.sent) * 1000 for s in samples]
    result_s = [
        results_at[k] - s.sent for s in samples if (k := s.response_url.rsplit("/response", 1)[-1]) in results_at
    ]
    return {
        "commands": commands,
        "concurrency": concurrency,
        "aws_delay_s": delay,
        "workers": workers,
        "http_200": sum(s.status == 200 for s in samples),
        "ack_ms": {
            "p50": round(statistics.median(ack_ms), 1),
            "p99": round(percentile(ack_ms, 99), 1),
            "max": round(max(ack_ms), 1),
        },
        "all_acked_after_s": round(acked_all - started, 2),
        "results_posted": len(result_s),
        "results_lost": commands - len(result_s),
        "result_s": {
            "p50": round(statistics.median(result_s), 2) if result_s else None,
            "max": round(max(result_s), 2) if result_s else None,
        },
        "aws_calls": dict(runtime.deps.gateway.calls),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds added to every EC2 call")
    parser.add_argument("--workers", type=int, default=8, help="the bot's AWS worker threads (aws.workers)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every result")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    report = run(args.commands, args.concurrency, args.delay, args.workers, args.timeout)
    print(json.dumps(report, indent=2))
    ok = report["ack_ms"]["p99"] < 100 and report["ack_ms"]["max"] < 3000 and report["results_lost"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
