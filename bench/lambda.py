#!/usr/bin/env python3
"""Cold start, size and memory of the Lambda functions, on this machine.

Each function's release binary runs against a minimal Lambda Runtime API served here (the
`/2018-06-01/runtime/invocation/next`, `/response` and `/error` calls `lambda_runtime` makes)
and gets the events AWS gives it: API Gateway HTTP API (v2) requests with properly signed
webhooks, SQS events carrying bodies the functions themselves queued, the SES receipt event
over a mail stored in S3, EventBridge scheduled events. Measured:

- cold start (every function, RUNS times): process start to the first completed invocation,
  with the AWS clients pointed at moto server (started here) and the channel secrets in moto's
  Secrets Manager, so start-up does what it does in AWS: read the configuration, build the SDK
  clients, load the secrets once;
- size: the binary as built (the release profile strips it) and the zipped package
  (`bootstrap` in a zip, as Lambda takes it);
- memory: peak RSS (VmHWM) of one process over INVOCATIONS invocations, read at 100, 1,000,
  5,000 and INVOCATIONS, so growth shows.

moto's SQS slows with the length of a queue (a FIFO `SendMessage` checks every queued message:
about 25 ms with 100 messages queued, 90 ms with 600, from boto3 as from Rust), so the memory
run points the SQS and S3 clients (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_S3`) at a small
fake served here that answers their wire protocols (SQS JSON `X-Amz-Target: AmazonSQS.*`, S3
REST objects) at once; DynamoDB and Secrets Manager stay on moto. The same fake stands in for
the platforms the functions call out to (the events webhook, the chat backend's reply
callback, X's search API).

The binaries are native (x86_64) release builds, not the arm64 builds Lambda runs.
Run with bench/lambda (it builds them first); writes bench/lambda.md.
"""

import base64
import collections
import hashlib
import hmac
import http.client
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
ONLY = [f for f in os.environ.get("LAMBDA_FUNCTIONS", "").split(",") if f]
# With LAMBDA_FUNCTIONS, a JSON file that keeps the results of each part for the next.
RESULTS = os.environ.get("LAMBDA_RESULTS")
INGEST = ["ingest-chat", "ingest-facebook", "ingest-twitter", "ingest-email"]
FUNCTIONS = INGEST + [
    "ticket-writer",
    "agent-api",
    "reply-sender",
    "event-sender",
    "sla-watch",
    "channel-health",
    "social-monitor",
]
CHECKPOINTS = sorted({c for c in (100, 1000, 5000, INVOCATIONS) if c <= INVOCATIONS})
COLD_TARGET_MS = 30
RSS_TARGET_MB = 32
CHAT_SECRET = "test-chat-secret"
FACEBOOK_SECRET = "test-facebook-app-secret"
TWITTER_SECRET = "test-twitter-consumer-secret"
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
SES_MESSAGE_ID = "bench0jiq08p0449huhf16qsmdi6sa1ltm069t801"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed function's connection: nothing to report

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; each answer leaves in one write (no Nagle stall)."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status, body=b"", headers=()):
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        head += [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


class Runtime:
    """A Lambda Runtime API: hands out queued events, collects the answers."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        runtime = self

        class RuntimeHandler(Handler):
            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.answer(404)
                    return
                event = runtime.events.get()
                self.answer(
                    200,
                    json.dumps(event).encode(),
                    [
                        ("Content-Type", "application/json"),
                        ("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4())),
                        ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        ),
                        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ],
                )

            def do_POST(self):
                body = self.body()
                self.answer(202)
                runtime.answers.put((time.perf_counter(), self.path, body))

        self.server = Server(("127.0.0.1", 0), RuntimeHandler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, check, timeout=60):
        self.events.put(event)
        at, path, body = self.answers.get(timeout=timeout)
        if not path.endswith("/response"):
            raise RuntimeError(f"{path}: {body[:300]!r}")
        check(json.loads(body))
        return at, body

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeAws:
    """SQS (JSON protocol) and S3 (REST objects) answering at once, and the platforms' side:
    the events webhook, the chat backend's reply callback, X's token and search endpoints."""

    def __init__(self, moto_url):
        self.objects = {}
        self.sent = collections.defaultdict(lambda: collections.deque(maxlen=50))
        self.calls = collections.Counter()
        self.reads = {}
        self.generation = 0
        self.moto = moto_url.removeprefix("http://").split(":")
        self.local = threading.local()
        fake = self
        search = (ROOT / "events/x-api/recent-search.json").read_bytes()

        class FakeHandler(Handler):
            def do_POST(self):
                body = self.body()
                target = self.headers.get("X-Amz-Target", "")
                if target.startswith("DynamoDB_"):
                    self.answer(*fake.dynamodb(self.path, self.headers, target, body))
                elif target.startswith("AmazonSQS."):
                    fake.calls[target] += 1
                    answer = fake.sqs(target.split(".", 1)[1], json.loads(body or b"{}"))
                    self.answer(200, json.dumps(answer).encode(),
                                [("Content-Type", "application/x-amz-json-1.0")])
                elif self.path.startswith("/oauth2/token"):
                    fake.calls["x token"] += 1
                    self.answer(200, b'{"token_type":"bearer","access_token":"bench-bearer"}',
                                [("Content-Type", "application/json")])
                else:
                    fake.calls[f"POST {self.path.split('?')[0]}"] += 1
                    self.answer(200, b'{"ok":true}', [("Content-Type", "application/json")])

            def do_PUT(self):
                fake.calls["s3 PutObject"] += 1
                body = self.body()
                fake.objects[self.path.split("?")[0]] = body
                self.answer(200, b"", [("ETag", f'"{hashlib.md5(body).hexdigest()}"')])

            def do_GET(self):
                path = self.path.split("?")[0]
                if path.startswith("/2/tweets/search"):
                    fake.calls["x search"] += 1
                    self.answer(200, search, [("Content-Type", "application/json")])
                    return
                fake.calls["s3 GetObject"] += 1
                body = fake.objects.get(path)
                if body is None:
                    self.answer(404, b"<Error><Code>NoSuchKey</Code></Error>",
                                [("Content-Type", "application/xml")])
                else:
                    self.answer(200, body, [("Content-Type", "application/octet-stream"),
                                            ("ETag", f'"{hashlib.md5(body).hexdigest()}"')])

            def do_HEAD(self):
                body = fake.objects.get(self.path.split("?")[0])
                self.answer(200 if body is not None else 404)

        self.server = Server(("127.0.0.1", 0), FakeHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def dynamodb(self, path, headers, target, body):
        """DynamoDB is moto's. A read asked again word for word with no write in between is
        answered with moto's answer to it (what moto would answer again); every write goes to
        moto and forgets those answers."""
        action = target.split(".", 1)[1]
        key = (target, body)
        read = action in DYNAMODB_READS
        if read and key in self.reads:
            self.calls[f"dynamodb {action} (repeated)"] += 1
            return self.reads[key]
        self.calls[f"dynamodb {action}"] += 1
        if not read:
            self.forget()
        generation = self.generation
        if getattr(self.local, "connection", None) is None:
            self.local.connection = http.client.HTTPConnection(self.moto[0], int(self.moto[1]))
        connection = self.local.connection
        try:
            connection.request("POST", path, body, dict(headers.items()))
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.local.connection = None
            raise
        answer = (
            response.status,
            data,
            [(k, v) for k, v in response.getheaders()
             if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server")],
        )
        if not read:
            self.forget()
        elif response.status == 200 and generation == self.generation:
            self.reads[key] = answer
        return answer

    def forget(self):
        self.generation += 1
        self.reads.clear()

    def sqs(self, action, request):
        def sent(entry):
            self.sent[request.get("QueueUrl", "")].append(entry["MessageBody"])
            answer = {
                "MessageId": str(uuid.uuid4()),
                "MD5OfMessageBody": hashlib.md5(entry["MessageBody"].encode()).hexdigest(),
            }
            if request.get("QueueUrl", "").endswith(".fifo"):
                answer["SequenceNumber"] = str(time.time_ns())
            return answer

        if action == "SendMessage":
            return sent(request)
        if action == "SendMessageBatch":
            return {"Successful": [{"Id": e["Id"], **sent(e)} for e in request["Entries"]], "Failed": []}
        if action.endswith("Batch"):
            return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]], "Failed": []}
        if action == "GetQueueUrl":
            return {"QueueUrl": f"{self.url}/123456789012/{request['QueueName']}"}
        return {}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# Events, as AWS delivers them.


def load(path):
    return json.loads((ROOT / path).read_text())


def unique():
    return f"{time.time_ns()}{uuid.uuid4().int % 1000:03d}"


def apigw(template, body):
    event = load(template)
    event["body"] = body
    event["isBase64Encoded"] = False
    event["headers"]["content-length"] = str(len(body.encode()))
    return event


def chat_event():
    body = json.dumps(
        {
            "session_id": "bench_session",
            "visitor": {"id": "bench_visitor", "name": "Alex", "email": "alex@example.com"},
            "message": {
                "id": f"bench_{unique()}",
                "text": "Where is my order?",
                "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
    )
    ts = str(int(time.time()))
    signature = hmac.new(CHAT_SECRET.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    event = apigw("events/aws/apigw-v2-chat-post.json", body)
    event["headers"]["x-crossdesk-timestamp"] = ts
    event["headers"]["x-crossdesk-signature"] = f"v1={signature}"
    return event


def facebook_event():
    body = (ROOT / "events/facebook/messenger-text.json").read_text().strip()
    body = body.replace("m_sample_text_0001", f"m_bench_{unique()}")
    signature = hmac.new(FACEBOOK_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    event = apigw("events/aws/apigw-v2-facebook-post.json", body)
    event["headers"]["x-hub-signature-256"] = f"sha256={signature}"
    return event


def twitter_post_event():
    body = load("events/aws/apigw-v2-twitter-post.json")["body"]
    body = body.replace("1859000000000000100", unique()[:19])
    signature = base64.b64encode(
        hmac.new(TWITTER_SECRET.encode(), body.encode(), hashlib.sha256).digest()
    ).decode()
    event = apigw("events/aws/apigw-v2-twitter-post.json", body)
    event["headers"]["x-twitter-webhooks-signature"] = f"sha256={signature}"
    return event


def twitter_crc_event():
    event = load("events/aws/apigw-v2-twitter-crc.json")
    token = f"bench{unique()}"
    event["rawQueryString"] = f"crc_token={token}"
    event["queryStringParameters"] = {"crc_token": token}
    return event


def twitter_events():
    """A CRC check, then a signed POST, and so on."""
    turn = [0]

    def next_event():
        turn[0] += 1
        return twitter_crc_event() if turn[0] % 2 else twitter_post_event()

    return next_event


def ses_event():
    event = load("events/aws/ses-lambda-event.json")
    event["Records"][0]["ses"]["mail"]["messageId"] = SES_MESSAGE_ID
    return event


def agent_event():
    return load("events/aws/apigw-v2-agent-list-tickets.json")


def agent_reply_event(ticket_id):
    event = agent_event()
    path = f"/api/tickets/{ticket_id}/replies"
    body = json.dumps({"text": "Happy to help! Your order left the warehouse today."})
    event.update(rawPath=path, rawQueryString="", routeKey="POST /api/tickets/{id}/replies",
                 body=body, isBase64Encoded=False)
    event.pop("queryStringParameters", None)
    event["headers"]["content-type"] = "application/json"
    event["requestContext"]["http"].update(method="POST", path=path)
    event["requestContext"]["routeKey"] = event["routeKey"]
    return event


def sqs_event(bodies, queue_arn, fifo):
    """An SQS event of one record per body, in the shape of `events/aws/sqs-event.json`."""
    template = load("events/aws/sqs-event.json")["Records"][0]
    records = []
    for body in bodies:
        record = json.loads(json.dumps(template))
        record.update(
            messageId=str(uuid.uuid4()),
            body=body,
            md5OfBody=hashlib.md5(body.encode()).hexdigest(),
            eventSourceARN=queue_arn,
            awsRegion="us-east-1",
            messageAttributes={},
        )
        record.pop("md5OfMessageAttributes", None)
        record["attributes"]["ApproximateReceiveCount"] = "1"
        if fifo:
            record["attributes"]["MessageGroupId"] = "bench"
            record["attributes"]["MessageDeduplicationId"] = str(uuid.uuid4())
        records.append(record)
    return {"Records": records}


def scheduled_event():
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/bench"],
        "detail": {},
    }


def http_ok(answer):
    if answer.get("statusCode") != 200:
        raise RuntimeError(f"not a success: {json.dumps(answer)[:300]}")


def batch_ok(answer):
    if answer.get("batchItemFailures"):
        raise RuntimeError(f"not a success: {json.dumps(answer)[:300]}")


def email_ok(answer):
    if answer.get("queued") != 1:
        raise RuntimeError(f"mail not queued: {answer}")


def any_ok(answer):
    pass


# ---------------------------------------------------------------------------------------------
# The stack: moto, the resources, the functions' environment.


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
    """The table, queues and bucket (made by crossdesk-local --aws --create-resources), the
    secret, and the mail SES stored."""
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
    # Its queue consumers' long polls (up to 20 s) outlive it in moto and would take the next
    # message sent.
    time.sleep(21)
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sqs = session.client("sqs", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    secrets = session.client("secretsmanager", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    s3 = session.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    secrets.create_secret(
        Name="bench-secret",
        SecretString=json.dumps(
            {
                "chat_secret": CHAT_SECRET,
                "chat_session_key": "bench-chat-session-key-0123456789",
                "facebook_app_secret": FACEBOOK_SECRET,
                "facebook_verify_token": "test-verify-token",
                "twitter_consumer_key": "bench-consumer-key",
                "twitter_consumer_secret": TWITTER_SECRET,
                "email_thread_key": "bench-email-thread-key-0123456789",
                "events_webhook_secret": "bench-events-webhook-secret-0123456789",
            }
        ),
    )
    mail = (ROOT / "events/email/ses-s3-object.eml").read_bytes()
    s3.put_object(Bucket="bench-data", Key=f"mail/{SES_MESSAGE_ID}", Body=mail)
    url = lambda name: sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs, mail, {
        "CROSSDESK_TABLE_NAME": "bench-tickets",
        "CROSSDESK_INBOUND_QUEUE_URL": url("bench-inbound.fifo"),
        "CROSSDESK_OUTBOUND_QUEUE_URL": url("bench-outbound.fifo"),
        "CROSSDESK_EVENTS_QUEUE_URL": url("bench-events"),
        "CROSSDESK_BUCKET": "bench-data",
        "CROSSDESK_SECRET_ID": "bench-secret",
        "CROSSDESK_EMAIL_FROM": "support@sample.example",
    }


def function_env(name, runtime, aws_env, resources, fake):
    return {
        **aws_env,
        **resources,
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/crossdesk/bench/{name}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_LOG": "warn",
        # The platforms' side, served by the fake.
        "CROSSDESK_EVENTS_WEBHOOK_URL": f"{fake.url}/events",
        "CROSSDESK_CHAT_CALLBACK_URL": f"{fake.url}/chat-callback",
        "CROSSDESK_TWITTER_API_URL": fake.url,
        "CROSSDESK_MONITORING_KEYWORDS": "Sample Shop",
        "CROSSDESK_TWITTER_ACCOUNT_ID": "3000000001",
        "CROSSDESK_TWITTER_ACCOUNT_HANDLE": "sample_support",
        "CROSSDESK_MEDIA_ALLOW_PRIVATE": fake.url.removeprefix("http://"),
        "CROSSDESK_EMAIL_RECEIVING": "false",
    }


def peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_ms(pid):
    """The CPU time the process's threads have used so far (scheduler statistics, in ns):
    unlike the wall time, it does not grow when other work on the machine takes the cores."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e6


def sizes(binary, workdir):
    """The binary as built (stripped by the release profile; `strip` again to be sure) and
    zipped as the `bootstrap` of a package."""
    stripped = workdir / f"{binary.name}.stripped"
    shutil.copy(binary, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    package = workdir / f"{binary.name}.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(stripped, "bootstrap")
    sizes = stripped.stat().st_size, package.stat().st_size
    stripped.unlink()
    package.unlink()
    return sizes


LOGS = Path(tempfile.mkdtemp(prefix="bench-lambda-"))


def start(name, runtime, env):
    """The function's process; its log (warnings and errors) goes to LOGS/<name>.log."""
    log = open(LOGS / f"{name}.log", "ab")
    return subprocess.Popen([str(TARGET / "release" / name)], env=env, stdout=log, stderr=log)


def cold_starts(name, make_event, check, aws_env, resources, fake):
    times = []
    for _ in range(RUNS):
        # A runtime per process: a killed process leaves a long-poll for the next event
        # behind, which must not swallow the next process's event.
        runtime = Runtime()
        began = time.perf_counter()
        proc = start(name, runtime, on_fake(function_env(name, runtime, aws_env, resources, fake), fake))
        try:
            at, _ = runtime.invoke(make_event(), check)
            times.append(((at - began) * 1000, cpu_ms(proc.pid)))
        finally:
            proc.kill()
            proc.wait()
            runtime.close()
    return times


def one_invocation(name, event, check, aws_env, resources, fake):
    runtime = Runtime()
    proc = start(name, runtime, function_env(name, runtime, aws_env, resources, fake))
    try:
        return json.loads(runtime.invoke(event, check)[1])
    finally:
        proc.kill()
        proc.wait()
        runtime.close()


def on_fake(env, fake):
    """`env` with SQS, S3 and DynamoDB pointed at the fake (DynamoDB passes through to moto):
    what is measured is the function, not moto's FIFO `SendMessage`, which checks every queued
    message (25 ms with 100 queued). Secrets Manager stays on moto."""
    fake.forget()  # moto's table may have changed since the fake last answered a read
    return {**env, "AWS_ENDPOINT_URL_SQS": fake.url, "AWS_ENDPOINT_URL_S3": fake.url,
            "AWS_ENDPOINT_URL_DYNAMODB": fake.url}


def memory_run(name, make_event, check, aws_env, resources, fake):
    runtime = Runtime()
    env = on_fake(function_env(name, runtime, aws_env, resources, fake), fake)
    proc = start(name, runtime, env)
    checkpoints = {}
    began = time.perf_counter()
    try:
        for i in range(1, INVOCATIONS + 1):
            runtime.invoke(make_event(), check)
            if i in CHECKPOINTS:
                checkpoints[i] = peak_rss_kib(proc.pid)
        per_invocation = (time.perf_counter() - began) / INVOCATIONS * 1000
    finally:
        proc.kill()
        proc.wait()
        runtime.close()
    return checkpoints, per_invocation


def main():
    moto, endpoint = start_moto()
    fake = FakeAws(endpoint)
    aws_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    cold, memory = {}, {}
    workdir = Path(tempfile.mkdtemp())
    try:
        sqs, mail, resources = create_resources(aws_env)
        fake.objects[f"/bench-data/mail/{SES_MESSAGE_ID}"] = mail
        inbound_arn = "arn:aws:sqs:us-east-1:123456789012:bench-inbound.fifo"
        wanted = lambda name: not ONLY or name in ONLY
        say = lambda text: print(text, file=sys.stderr, flush=True)
        say(f"function logs: {LOGS}")

        # 1. Cold starts of the ingest functions; then one invocation of each against moto makes
        # the bodies the queue consumers take.
        events = {
            "ingest-chat": (chat_event, http_ok),
            "ingest-facebook": (facebook_event, http_ok),
            "ingest-twitter (CRC GET)": (twitter_crc_event, http_ok),
            "ingest-twitter (POST)": (twitter_post_event, http_ok),
            "ingest-email": (ses_event, email_ok),
        }
        for label, (make, check) in events.items():
            name = label.split(" ")[0]
            if wanted(name):
                cold[label] = cold_starts(name, make, check, aws_env, resources, fake)
                say(f"{label}: cold start {statistics.median(t for t, _ in cold[label]):.1f} ms")

        def drain(queue_url):
            bodies = []
            while True:
                got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          VisibilityTimeout=0).get("Messages", [])
                new = [m for m in got if m["Body"] not in bodies]
                if not new:
                    return bodies
                bodies += [m["Body"] for m in new]
                for m in got:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

        for label, (make, check) in events.items():
            if (TARGET / "release" / label.split(" ")[0]).exists():
                # The consumers below take what every ingest function queues.
                one_invocation(label.split(" ")[0], make(), check, aws_env, resources, fake)
        inbound = drain(resources["CROSSDESK_INBOUND_QUEUE_URL"])
        say(f"{len(inbound)} inbound messages queued by the ingest functions")
        writer_event = lambda: sqs_event([inbound[0]], inbound_arn, True)
        if wanted("ticket-writer"):
            cold["ticket-writer"] = cold_starts("ticket-writer", writer_event, batch_ok,
                                                aws_env, resources, fake)
        # Every queued message stored, so that the agent API and the schedules have tickets.
        for body in inbound:
            one_invocation("ticket-writer", sqs_event([body], inbound_arn, True), batch_ok,
                           aws_env, resources, fake)
        if wanted("agent-api"):
            cold["agent-api"] = cold_starts("agent-api", agent_event, http_ok, aws_env, resources, fake)
        listed = one_invocation("agent-api", agent_event(), http_ok, aws_env, resources, fake)
        tickets = json.loads(listed["body"])
        tickets = tickets.get("tickets", tickets) if isinstance(tickets, dict) else tickets
        say(f"agent API lists: {json.dumps(tickets)[:300]}")
        chat_ticket = next(t["id"] for t in tickets if t.get("channel") == "chat")
        one_invocation("agent-api", agent_reply_event(chat_ticket), any_ok, aws_env, resources, fake)
        outbound = drain(resources["CROSSDESK_OUTBOUND_QUEUE_URL"])
        events_queued = drain(resources["CROSSDESK_EVENTS_QUEUE_URL"])
        say(f"{len(outbound)} outbound jobs, {len(events_queued)} events queued")
        reply_event = lambda: sqs_event(outbound[:1], inbound_arn.replace("inbound", "outbound"), True)
        events_arn = "arn:aws:sqs:us-east-1:123456789012:bench-events"
        event_event = lambda: sqs_event(events_queued[:1], events_arn, False)
        consumers = {
            "ticket-writer": None,
            "agent-api": None,
            "reply-sender": (reply_event, batch_ok),
            "event-sender": (event_event, batch_ok),
            "sla-watch": (scheduled_event, any_ok),
            "channel-health": (scheduled_event, any_ok),
            "social-monitor": (scheduled_event, any_ok),
        }
        for name, spec in consumers.items():
            if spec and wanted(name):
                cold[name] = cold_starts(name, *spec, aws_env, resources, fake)
                say(f"{name}: cold start {statistics.median(t for t, _ in cold[name]):.1f} ms")

        # 2. Memory: INVOCATIONS invocations of one process each, SQS and S3 on the fake.
        runs = {
            "ingest-chat": (chat_event, http_ok),
            "ingest-facebook": (facebook_event, http_ok),
            "ingest-twitter": (twitter_events(), http_ok),
            "ingest-email": (ses_event, email_ok),
            "ticket-writer": (writer_events(inbound, inbound_arn), batch_ok),
            "agent-api": (agent_event, http_ok),
            "reply-sender": (reply_event, batch_ok),
            "event-sender": (event_event, batch_ok),
            "sla-watch": (scheduled_event, any_ok),
            "channel-health": (scheduled_event, any_ok),
            "social-monitor": (scheduled_event, any_ok),
        }
        for name in FUNCTIONS:
            if wanted(name):
                memory[name] = memory_run(name, *runs[name], aws_env, resources, fake)
                say(f"{name}: peak RSS {memory[name][0]} KiB, {memory[name][1]:.2f} ms per invocation")
        say(f"fake AWS calls: {dict(fake.calls)}")
    finally:
        moto.kill()
        moto.wait()
        fake.close()
    sized = {name: sizes(TARGET / "release" / name, workdir) for name in FUNCTIONS if wanted(name)}
    shutil.rmtree(workdir, ignore_errors=True)
    commands = [command_line()]
    if RESULTS:
        # A run in parts (LAMBDA_FUNCTIONS): the results of the earlier parts, then this one's.
        earlier = json.loads(Path(RESULTS).read_text()) if Path(RESULTS).exists() else {}
        cold = {**earlier.get("cold", {}), **cold}
        memory = {**earlier.get("memory", {}), **{k: [{str(c): v for c, v in rss.items()}, per]
                                                 for k, (rss, per) in memory.items()}}
        sized = {**earlier.get("sized", {}), **sized}
        commands = earlier.get("commands", []) + commands
        Path(RESULTS).write_text(json.dumps(
            {"cold": cold, "memory": memory, "sized": sized, "commands": commands}))
        memory = {k: ({int(c): v for c, v in rss.items()}, per) for k, (rss, per) in memory.items()}
    write(cold, memory, sized, commands)


def command_line():
    settings = [f"LAMBDA_RUNS={RUNS}"] if RUNS != 5 else []
    settings += [f"LAMBDA_INVOCATIONS={INVOCATIONS}"] if INVOCATIONS != 10000 else []
    settings += [f"LAMBDA_FUNCTIONS={','.join(ONLY)}"] if ONLY else []
    return " ".join(settings + ["bench/lambda"])


def writer_events(bodies, arn):
    """SQS events of the queued messages in turn: mostly redeliveries (SQS delivers at least
    once; each is found stored and acknowledged), and every 50th a new message (a fresh
    message id in the same conversation), threaded and stored."""
    turn = [0]

    def next_event():
        turn[0] += 1
        body = bodies[turn[0] % len(bodies)]
        if turn[0] % 50:
            return sqs_event([body], arn, True)
        message = json.loads(body)
        message["id"] = f"msg_{uuid.uuid4().hex}"
        if message.get("platform_message_id"):
            message["platform_message_id"] = f"{message['platform_message_id']}-{turn[0]}"
        return sqs_event([json.dumps(message)], arn, True)

    return next_event


def write(cold, memory, sized, commands):
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
        "Written by `bench/lambda`; do not edit by hand. Native (x86_64) release builds, each run",
        "against a minimal Lambda Runtime API in `bench/lambda.py`, with the events AWS gives it",
        "(API Gateway v2 requests with signed webhooks, SQS events of bodies the functions queued,",
        "the SES receipt event over a mail in S3, EventBridge scheduled events).",
        "",
        "- **cold start**: process start to the first completed invocation, median (min–max) of",
        f"  {RUNS} starts: start-up reads the configuration, builds the SDK clients and loads the",
        "  secrets from Secrets Manager (moto server), as in AWS; SQS, S3 and DynamoDB are the fake",
        "  described under memory (DynamoDB passing through to moto), so that moto's FIFO",
        "  `SendMessage` is not counted. Target for the ingest",
        f"  functions: under {COLD_TARGET_MS} ms.",
        "  The CPU time its threads used by then (scheduler statistics) does not grow with other",
        "  work on the machine; the wall time does.",
        "- **size**: the stripped binary and the zipped package (`bootstrap`).",
        f"- **memory**: peak RSS (VmHWM) of one process after {' / '.join(f'{c:,}' for c in CHECKPOINTS)}",
        f"  invocations. Target: under {RSS_TARGET_MB} MB, and no growth (the peak after the last",
        "  invocation within 1 MiB of the peak after 1,000). This run points the SQS and S3 clients",
        "  at a fake in the bench runner that answers their wire protocols at once (SQS JSON",
        "  `X-Amz-Target: AmazonSQS.*`, S3 objects), because moto's FIFO `SendMessage` checks every",
        "  queued message (25 ms with 100 queued, 90 ms with 600). DynamoDB stays on moto behind the",
        "  fake, which answers a read asked again word for word with no write in between with moto's",
        "  answer (every write goes to moto and forgets those answers); Secrets Manager is moto's.",
        "  The fake also plays the events webhook, the chat backend's reply callback and X's search.",
        "  Events: the ingest functions get a new, signed webhook each time (X: CRC checks and posts",
        "  in turn); the ticket writer the queued messages again (SQS delivers at least once: each",
        "  is found stored) with a new message every 50th; the reply and event senders one queued",
        "  job or event again (sent once, then found sent); the schedules their scheduled event.",
        "",
        f"- machine: {os.cpu_count()} cores, {cpu}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows the numbers)",
        f"- date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}",
        f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}",
        f"- command: {', then '.join(f'`{c}`' for c in commands)}",
        "",
        "| function | event | cold start, median (min–max) | CPU time to the first answer, median | target |",
        "|---|---|--:|--:|---|",
    ]
    for label, runs in cold.items():
        name = label.split(" ")[0]
        times = [t for t, _ in runs]
        median = statistics.median(times)
        target = ("**met**" if median < COLD_TARGET_MS else "**missed**") if name in INGEST else "—"
        lines.append(
            f"| `{name}` | {cold_label(label)} | {median:.1f} ms ({min(times):.1f}–{max(times):.1f}) "
            f"| {statistics.median(c for _, c in runs):.1f} ms | {target} |"
        )
    lines += [
        "",
        f"| function | stripped | zipped | peak RSS after {' / '.join(f'{c:,}' for c in CHECKPOINTS)} | "
        "per invocation | under 32 MB | no growth |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    for name in FUNCTIONS:
        if name not in sized:
            continue
        stripped, zipped = sized[name]
        if name in memory:
            rss, per = memory[name]
            peaks = " / ".join(f"{rss[k] / 1024:.1f}" for k in sorted(rss))
            peak = max(rss.values()) * 1024
            under = "**met**" if peak < RSS_TARGET_MB * 1_000_000 else "**missed**"
            base = rss.get(1000, min(rss.values()))
            flat = "**met**" if max(rss.values()) - base <= 1024 else "**missed**"
            lines.append(f"| `{name}` | {mib(stripped)} | {mib(zipped)} | {peaks} MiB | {per:.2f} ms | {under} | {flat} |")
        else:
            lines.append(f"| `{name}` | {mib(stripped)} | {mib(zipped)} | — | — | — | — |")
    (ROOT / "bench/lambda.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def cold_label(label):
    return {
        "ingest-chat": "chat webhook, API Gateway v2 POST, signed",
        "ingest-facebook": "Messenger webhook, API Gateway v2 POST, signed",
        "ingest-twitter (CRC GET)": "X CRC check, API Gateway v2 GET",
        "ingest-twitter (POST)": "X mention webhook, API Gateway v2 POST, signed",
        "ingest-email": "SES receipt event, mail read from S3",
        "ticket-writer": "SQS FIFO event, one queued message",
        "agent-api": "API Gateway v2 `GET /api/tickets` (JWT claims)",
        "reply-sender": "SQS FIFO event, one reply job (chat)",
        "event-sender": "SQS event, one outgoing event",
        "sla-watch": "EventBridge scheduled event",
        "channel-health": "EventBridge scheduled event",
        "social-monitor": "EventBridge scheduled event (X search)",
    }[label]


if __name__ == "__main__":
    main()
