"""Ack latency under slow AWS: Slack's 3-second rule, measured from outside the bot.

Three processes, so that no process's GIL skews another's timing:

* the bot, `python -m bot`, exactly as production runs it (waitress on $PORT,
  Bolt, the worker pool, the scheduler), configured only through its
  environment: SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL,
  AWS_ENDPOINT_URL, CHATOPS_CONFIG, CHATOPS_DB, PORT;
* the fake EC2 (`python -m benchmarks.fake_ec2 --latency S`), which holds
  every API answer for S seconds: slow AWS on the AWS side, the bot's code
  untouched;
* this process: the load generator (N signed slash commands, C at a time, a
  mix of `/snapshot list vol-…`, `/volume list` and `/snapshot status
  snap-…`) and the fake Slack Web API, which records when each command's
  result reached its response_url.

    python -m benchmarks.ack_latency --commands 200 --concurrency 50 --delay 2

Prints a JSON report: ack_ms (p50/p99/max), result_s (seconds from each
command's send to its result at the response_url), results_lost, the bot's CPU
while acking, and the load average before and after (acks are CPU-bound, so
another job on the machine shows up in them).  Exits 1 if a target is missed.

Targets (issue 6): ack p99 < 100 ms, max < 3 s, no result lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bot.testing import slack_payloads
from bot.testing.fakeslack import FakeSlack, message_text

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
USER, CHANNEL = "U0BENCH", "C0BENCH"

CONFIG = """\
[slack]
digest_channel = "C0DIGEST"

[aws]
default_region = "{region}"
regions = ["{region}"]
workers = {workers}

[schedule]
timezone = "UTC"
digest = "0 9 1 1 *"  # once a year: no digest lands in the middle of a run
"""


@dataclass
class Sample:
    key: str  # the response_url's id
    line: str
    sent: float
    acked: float
    status: int
    ack_text: str


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def _clean_env() -> dict[str, str]:
    """The parent's environment without anything AWS, Slack or chatops that could leak into a child."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "CHATOPS_", "MOTO_"))}


def start_fake_ec2(delay: float, volumes: int, snapshots: int, log: Path) -> tuple[subprocess.Popen, str]:
    """The fake EC2 in its own process; returns it and its URL (the first line it prints)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.fake_ec2",
            "--port",
            "0",
            "--latency",
            str(delay),
            "--regions",
            REGION,
            "--volumes",
            str(volumes),
            "--snapshots",
            str(snapshots),
        ],
        env=_clean_env(),
        cwd=REPO,  # benchmarks/ is not an installed package: run it from the checkout
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"the fake EC2 did not start (see {log})")
    return proc, url


def start_bot(workdir: Path, slack: FakeSlack, ec2_url: str, workers: int) -> tuple[subprocess.Popen, str]:
    """`python -m bot` in its own process, configured only by its environment; returns it and its base URL."""
    config = workdir / "config.toml"
    config.write_text(CONFIG.format(region=REGION, workers=workers))
    port = _free_port()
    env = {
        **_clean_env(),
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.api_url,
        "AWS_ENDPOINT_URL": ec2_url,
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(workdir / "bot.db"),
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        env=env,
        cwd=workdir,
        stdout=(workdir / "bot.out").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited with {proc.returncode}: {(workdir / 'bot.out').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError("the bot never became healthy")


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), read before it exits."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds the process has used so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _stop(proc: subprocess.Popen) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _response_key(url_or_path: str) -> str:
    return url_or_path.rsplit("/response/", 1)[-1]


def run(
    commands: int = 200,
    concurrency: int = 50,
    delay: float = 2.0,
    workers: int = 8,
    timeout: float = 600,
    keep_workdir: bool = False,
) -> dict:
    """Start the fake EC2 and the bot, fire the commands, wait for every result; return the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="ack-bench-"))
    slack = FakeSlack().start()
    ec2_proc = bot_proc = None
    load_before = os.getloadavg()
    try:
        ec2_proc, ec2_url = start_fake_ec2(delay, volumes=3, snapshots=30, log=workdir / "fake-ec2.err")
        volume = _get_json(f"{ec2_url}/_fake/ids?region={REGION}&kind=volume")[0]
        snapshot = _get_json(f"{ec2_url}/_fake/ids?region={REGION}&kind=snapshot")[0]
        bot_proc, bot_url = start_bot(workdir, slack, ec2_url, workers)
        lines = [f"/snapshot list {volume}", "/volume list", f"/snapshot status {snapshot}"]
        requests = signed_requests(slack, bot_url, lines, commands)

        cpu_before, self_before = cpu_seconds(bot_proc.pid), time.process_time()
        started = time.monotonic()
        samples = asyncio.run(_fire(bot_url, requests, concurrency))
        acked_all = time.monotonic()
        cpu_after, self_after = cpu_seconds(bot_proc.pid), time.process_time()

        results = wait_for_results(slack, {key for key, _, _ in requests}, timeout)
        report = summarize(samples, results, started, acked_all)
        report["cpu_s_while_acking"] = {
            "bot_user": round(cpu_after[0] - cpu_before[0], 2),
            "bot_system": round(cpu_after[1] - cpu_before[1], 2),
            "load_generator": round(self_after - self_before, 2),
        }
        report["bot_peak_rss_mib"] = peak_rss_mib(bot_proc.pid)
        report["aws_calls"] = _get_json(f"{ec2_url}/_fake/stats")["calls"]
    finally:
        exit_codes = {}
        if bot_proc is not None:
            exit_codes["bot"] = _stop(bot_proc)
        if ec2_proc is not None:
            exit_codes["fake_ec2"] = _stop(ec2_proc)
        slack.stop()
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "commands": commands,
        "concurrency": concurrency,
        "aws_delay_s": delay,
        "workers": workers,
        **report,
        "exit_codes": exit_codes,
        # Other jobs on the machine compete for its cores: the acks are CPU-bound, so say how busy it was.
        "loadavg_1_5_15": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
    }


def signed_requests(slack: FakeSlack, bot_url: str, lines: list[str], commands: int) -> list[tuple[str, str, bytes]]:
    """Each command as raw HTTP bytes, signed, with its own response_url: (response key, line, request).

    Built up front so that the load generator does as little as possible while timing.
    """
    host_port = bot_url.removeprefix("http://")
    requests = []
    for i in range(commands):
        line = lines[i % len(lines)]
        command, _, text = line.partition(" ")
        response_url = slack.new_response_url()
        body = slack_payloads.slash_command(command, text, USER, CHANNEL, response_url).encode()
        headers = {
            "Host": host_port,
            "Content-Length": str(len(body)),
            "Connection": "close",
            **slack_payloads.signed_headers(SECRET, body.decode()),
        }
        head = "POST /slack/events HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        requests.append((_response_key(response_url), line, head.encode() + body))
    return requests


async def _fire(bot_url: str, requests: list[tuple[str, str, bytes]], concurrency: int) -> list[Sample]:
    """Send every request, `concurrency` at a time, one connection each (as Slack does); time each answer.

    One thread and an event loop, not a thread per request: the load
    generator's own GIL contention would otherwise show up as ack latency.
    """
    host, port = bot_url.removeprefix("http://").split(":")
    samples: list[Sample] = []
    queue = iter(requests)

    async def one(key: str, line: str, raw: bytes) -> None:
        sent = time.monotonic()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw)
        answer = await reader.read()  # Connection: close, so the answer ends at EOF
        acked = time.monotonic()
        writer.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        try:
            ack_text = message_text(json.loads(payload)) if payload else ""
        except ValueError:
            ack_text = payload.decode(errors="replace")
        samples.append(Sample(key, line, sent, acked, status, ack_text))

    async def client() -> None:
        for request in queue:  # the clients share one iterator: each takes the next request when free
            await one(*request)

    await asyncio.gather(*(client() for _ in range(min(concurrency, len(requests)))))
    return samples


def wait_for_results(slack: FakeSlack, wanted: set[str], timeout: float) -> dict[str, tuple[float, str]]:
    """Wait until every response_url got its result (or the timeout); the first post's time and text for each."""

    def answered(fake: FakeSlack) -> bool:
        return wanted <= {_response_key(c.path) for c in fake.calls_of("response_url")}

    try:
        slack.wait_for(answered, timeout=timeout)
    except TimeoutError:
        pass  # the report counts what is missing
    first: dict[str, tuple[float, str]] = {}
    for call in slack.calls_of("response_url"):
        first.setdefault(_response_key(call.path), (call.at, message_text(call.params)))
    return first


def _spread(values: list[float], scale: float, digits: int) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(values, 50) * scale, digits),
        "p99": round(percentile(values, 99) * scale, digits),
        "max": round(max(values) * scale, digits),
    }


def summarize(samples: list[Sample], results: dict[str, tuple[float, str]], started: float, acked_all: float) -> dict:
    """Ack latency, and when each result reached its response_url (seconds from that command's send)."""
    ack_s = [s.acked - s.sent for s in samples]
    result_s = [results[s.key][0] - s.sent for s in samples if s.key in results]
    warnings = Counter(
        " ".join(s.line.split()[:2]) for s in samples if s.key in results and results[s.key][1].startswith(":warning:")
    )
    return {
        "http_200": sum(s.status == 200 for s in samples),
        "acked_working": sum("working" in s.ack_text.lower() for s in samples),
        "ack_ms": _spread(ack_s, 1000, 1),
        "all_acked_after_s": round(acked_all - started, 2),
        "slowest_acks": [
            {"sent_at_s": round(s.sent - started, 3), "ack_ms": round((s.acked - s.sent) * 1000, 1), "line": s.line}
            for s in sorted(samples, key=lambda s: s.acked - s.sent)[-5:]
        ],
        "results_posted": len(result_s),
        "results_lost": len(samples) - len(result_s),
        "error_results": dict(warnings),
        "result_s": _spread(result_s, 1, 2),
        "all_results_after_s": round(max((at for at, _ in results.values()), default=acked_all) - started, 2),
    }


def machine() -> dict:
    return {"nproc": os.cpu_count(), "uname": " ".join(os.uname()), "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ack_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the fake EC2 adds to every answer")
    parser.add_argument("--workers", type=int, default=8, help="the bot's AWS worker threads (aws.workers)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every result")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the bot's config, db and log")
    args = parser.parse_args(argv)
    report = run(args.commands, args.concurrency, args.delay, args.workers, args.timeout, args.keep_workdir)
    report["machine"] = machine()
    ack, result = report["ack_ms"], report["result_s"]
    report["targets_met"] = ack["p99"] < 100 and ack["max"] < 3000 and report["results_lost"] == 0
    print(json.dumps(report, indent=2))
    print(
        f"ack p50/p99/max {ack['p50']}/{ack['p99']}/{ack['max']} ms; "
        f"result p50/p99/max {result['p50']}/{result['p99']}/{result['max']} s; "
        f"lost {report['results_lost']}; load {report['loadavg_1_5_15']['before'][0]}→"
        f"{report['loadavg_1_5_15']['after'][0]}; targets met: {report['targets_met']}",
        file=sys.stderr,
    )
    return 0 if report["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
