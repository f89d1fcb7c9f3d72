"""What moto lacks for the demo and the tests, so they do not pay botocore's retries of moto's 500s.

moto (5.x) has no `DescribeLockedSnapshots`, no Recycle Bin listings and no
Recycle Bin service: each plan and sweep listing asks for locks and rules, and
each unanswered call costs about 2–3 s of retries (and logs moto's traceback).
`answer_missing_actions()` teaches moto's EC2 that no snapshot is locked and
the bin is empty; `NoRulesRecycleBin` is an rbin endpoint with no retention rules
(`AWS_ENDPOINT_URL_RBIN`), so every deletion reads as permanent.  The
project's own fake EC2 (benchmarks/fake_ec2.py) has locks, rules and the bin
for the tests that need them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _empty(action: str, member: str) -> str:
    return (
        f'<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>moto-extras</requestId><{member}/></{action}Response>"
    )


# EC2 actions moto lacks → their empty answer: no snapshot is locked, the Recycle Bin is empty.
EMPTY_ANSWERS = {
    "describe_locked_snapshots": _empty("DescribeLockedSnapshots", "snapshotSet"),
    "list_snapshots_in_recycle_bin": _empty("ListSnapshotsInRecycleBin", "snapshotSet"),
    "list_images_in_recycle_bin": _empty("ListImagesInRecycleBin", "imageSet"),
}


def answer_missing_actions() -> None:
    """moto's EC2 answers DescribeLockedSnapshots (no lock) and the bin's listings (empty); idempotent."""
    from moto.ec2.responses import EC2Response

    for name, answer in EMPTY_ANSWERS.items():
        if not hasattr(EC2Response, name):
            setattr(EC2Response, name, lambda self, answer=answer: answer)


class NoRulesRecycleBin:
    """An rbin endpoint with no retention rules: ListRules answers an empty list, anything else 400."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = (200, {"Rules": []}) if self.path.startswith("/list-rules") else (400, {})
                if status != 200:
                    body = {"message": f"{self.path} is not served here"}
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="no-rules-rbin", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> NoRulesRecycleBin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
