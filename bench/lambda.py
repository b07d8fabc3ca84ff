#!/usr/bin/env python3
"""Cold start, size and memory of the Lambda functions, on this machine.

Each function's release binary runs against a minimal Lambda Runtime API served here (the
`/2018-06-01/runtime/invocation/next` and `/response` calls `lambda_runtime` makes), with its
AWS clients pointed at moto server (started here) and its channel secret in moto's Secrets
Manager, so start-up does what it does in AWS: read the configuration, build the SDK clients and
load the secret once. Measured:

- cold start: process start to the first completed invocation (median, min and max of RUNS);
- size: the stripped binary and the zipped package (`bootstrap` in a zip, as Lambda takes it);
- memory: peak RSS (VmHWM) after 100, 1,000 and INVOCATIONS invocations of one process, to see
  the peak and any growth.

The binaries are native (x86_64) release builds, not the arm64 builds Lambda runs.
Run with bench/lambda (it builds them first); writes bench/lambda.md.
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RUNS = int(os.environ.get("LAMBDA_RUNS", "5"))
INVOCATIONS = int(os.environ.get("LAMBDA_INVOCATIONS", "10000"))
FUNCTIONS = ["ingest-chat", "ingest-facebook", "agent-api", "ticket-writer"]
CHAT_SECRET = "test-chat-secret"
FACEBOOK_SECRET = "test-facebook-app-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime:
    """A Lambda Runtime API: hands out queued events, collects the answers."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                event = runtime.events.get()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                runtime.answers.put((time.perf_counter(), self.path, body))

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, timeout=30):
        self.events.put(event)
        at, path, body = self.answers.get(timeout=timeout)
        if not path.endswith("/response"):
            raise RuntimeError(f"{path}: {body[:300]!r}")
        answer = json.loads(body)
        # Only the success path counts: a webhook accepted, a batch stored whole.
        if answer.get("statusCode", 200) != 200 or answer.get("batchItemFailures"):
            raise RuntimeError(f"not a success: {body[:300]!r}")
        return at, body


def chat_event():
    event = json.loads((ROOT / "events/aws/apigw-v2-chat-post.json").read_text())
    body = json.dumps(
        {
            "session_id": "bench_session",
            "visitor": {"id": "bench_visitor"},
            "message": {
                "id": f"bench_{uuid.uuid4().hex}",
                "text": "Where is my order?",
                "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
    )
    ts = str(int(time.time()))
    signature = hmac.new(CHAT_SECRET.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    event["body"] = body
    event["headers"]["x-crossdesk-timestamp"] = ts
    event["headers"]["x-crossdesk-signature"] = f"v1={signature}"
    event["headers"]["content-length"] = str(len(body))
    return event


def facebook_event():
    return json.loads((ROOT / "events/aws/apigw-v2-facebook-post.json").read_text())


def agent_event():
    return json.loads((ROOT / "events/aws/apigw-v2-agent-list-tickets.json").read_text())


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/moto-server.py"), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def create_resources(aws_env):
    """The table, queues and bucket (made by crossdesk-local --aws --create-resources) and the secret."""
    import boto3

    env = {**aws_env, "PATH": os.environ["PATH"], "CROSSDESK_PORT": "0",
           "CROSSDESK_RESOURCE_PREFIX": "bench", "RUST_LOG": "warn"}
    local = subprocess.Popen(
        [str(TARGET / "release/crossdesk-local"), "--aws", "--create-resources"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    for line in local.stdout:
        if "listening on" in line:
            break
    local.kill()
    local.wait()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sqs = session.client("sqs", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    secrets = session.client("secretsmanager", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    secrets.create_secret(
        Name="bench-secret",
        SecretString=json.dumps(
            {
                "chat_secret": CHAT_SECRET,
                "facebook_app_secret": FACEBOOK_SECRET,
                "facebook_verify_token": "test-verify-token",
                "email_thread_key": "bench-email-thread-key-0123456789",
            }
        ),
    )
    url = lambda name: sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs, {
        "CROSSDESK_TABLE_NAME": "bench-tickets",
        "CROSSDESK_INBOUND_QUEUE_URL": url("bench-inbound.fifo"),
        "CROSSDESK_OUTBOUND_QUEUE_URL": url("bench-outbound.fifo"),
        "CROSSDESK_EVENTS_QUEUE_URL": url("bench-events"),
        "CROSSDESK_BUCKET": "bench-data",
        "CROSSDESK_SECRET_ID": "bench-secret",
        "CROSSDESK_EMAIL_FROM": "support@sample.example",
    }


def function_env(name, runtime, aws_env, resources):
    return {
        **aws_env,
        **resources,
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/crossdesk/bench/{name}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_LOG": "warn",
    }


def peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def sizes(binary, workdir):
    stripped = workdir / f"{binary.name}.stripped"
    shutil.copy(binary, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    package = workdir / f"{binary.name}.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(stripped, "bootstrap")
    return stripped.stat().st_size, package.stat().st_size


def main():
    moto, endpoint = start_moto()
    aws_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    rows = []
    try:
        sqs, resources = create_resources(aws_env)
        workdir = Path(tempfile.mkdtemp())
        # The ticket writer's event: a real queued message, as ingest-chat queued it.
        events = {"ingest-chat": chat_event, "ingest-facebook": facebook_event, "agent-api": agent_event}
        for name in FUNCTIONS:
            binary = TARGET / "release" / name
            if name == "ticket-writer":
                received = sqs.receive_message(
                    QueueUrl=resources["CROSSDESK_INBOUND_QUEUE_URL"], MaxNumberOfMessages=1,
                    AttributeNames=["All"],
                )["Messages"][0]
                sqs_template = json.loads((ROOT / "events/aws/sqs-event.json").read_text())
                record = sqs_template["Records"][0]
                record["body"] = received["Body"]
                record["attributes"]["MessageGroupId"] = received["Attributes"].get("MessageGroupId", "g")
                record["messageAttributes"] = {}
                sqs_event = {"Records": [record]}
                events[name] = lambda: sqs_event
            cold = []
            for _ in range(RUNS):
                # A runtime per process: a killed process leaves a long-poll for the next
                # event behind, which must not swallow the next process's event.
                runtime = Runtime()
                env = function_env(name, runtime, aws_env, resources)
                start = time.perf_counter()
                proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                at, _ = runtime.invoke(events[name]())
                cold.append((at - start) * 1000)
                proc.kill()
                proc.wait()
            runtime = Runtime()
            env = function_env(name, runtime, aws_env, resources)
            proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            checkpoints = {}
            began = time.perf_counter()
            for i in range(1, INVOCATIONS + 1):
                runtime.invoke(events[name]())
                if i in (100, 1000, INVOCATIONS):
                    checkpoints[i] = peak_rss_kib(proc.pid)
            per_invocation = (time.perf_counter() - began) / INVOCATIONS * 1000
            proc.kill()
            proc.wait()
            stripped, zipped = sizes(binary, workdir)
            rows.append((name, stripped, zipped, cold, checkpoints, per_invocation))
            print(f"{name}: cold {statistics.median(cold):.1f} ms, peak RSS {checkpoints}", file=sys.stderr)
    finally:
        moto.kill()
        moto.wait()
    write(rows)


def write(rows):
    mib = lambda b: f"{b / 1048576:.1f} MiB"
    cpu = next(
        (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")),
        "unknown CPU",
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [
        "# Lambda functions: cold start, size, memory",
        "",
        "Written by `bench/lambda`; do not edit by hand. Native (x86_64) release builds against a",
        "minimal Lambda Runtime API and moto server on the same machine: start-up reads the",
        "configuration, builds the SDK clients and loads the channel secret from Secrets Manager, as",
        "in AWS. Cold start: process start to the first completed invocation.",
        "",
        f"- machine: {os.cpu_count()} cores, {cpu}",
        f"- date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}",
        f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}",
        f"- command: `LAMBDA_RUNS={RUNS} LAMBDA_INVOCATIONS={INVOCATIONS} bench/lambda`",
        "",
        f"| function | stripped binary | zipped | cold start median (min–max) | peak RSS after "
        f"{' / '.join(f'{k:,}' for k in sorted(rows[0][4]))} invocations | per invocation |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, stripped, zipped, cold, rss, per in rows:
        peaks = " / ".join(f"{rss[k] / 1024:.1f}" for k in sorted(rss))
        lines.append(
            f"| `{name}` | {mib(stripped)} | {mib(zipped)} | {statistics.median(cold):.1f} ms "
            f"({min(cold):.1f}–{max(cold):.1f}) | {peaks} MiB | {per:.2f} ms |"
        )
    (ROOT / "bench/lambda.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
