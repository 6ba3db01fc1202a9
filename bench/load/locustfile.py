"""The load of ``make load``: agents, batches, bursts, junk, slow clients, reviewers and an admin at once.

Run by bench/load/run.py against the stack it starts (the proxy's URL as ``--host``); the credentials of the
tenants and people it created come from the JSON file named by ``FLK_LOAD_CREDENTIALS``. Users:

  Agent        fresh signed PCS of three tenants (sticky, mixed and non-sticky regimes, a third degraded),
               30 % replays of PCS it already delivered, now and then GET /v1/pcs/<pcs_id> with the tenant's key
  BatchAgent   POST /v1/pcs/batch of 20-100 fresh PCS
  Burst        25 PCS back to back for the tenant ``burst`` (5/s, burst 10): most get 429 + Retry-After
  Junk         unauthenticated junk: not JSON, bad signatures, unknown tenants, wrong media type
  SlowClient   a raw socket that sends a PCS in pieces over 2-4 s, through the proxy (which buffers it)
  Reviewer     logs in, takes the next item of the queue (claims it), opens it, labels it
  Admin        logs in and browses the admin: records, review items, VerifyParams, tenants

Expected refusals (429 for bursts, 4xx for junk) count as successes; anything else unexpected is a failure.
At the end it prints requests, throughput, p50/p95/p99 and the status mix per endpoint against the SLO
(p95 <= 200 ms). ``FLK_LOAD_MAX_REQUESTS`` stops the run after that many requests (the time limit is locust's
``-t``).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import gevent
from locust import HttpUser, between, events, task
from locust.contrib.fasthttp import FastHttpUser

sys.path.insert(0, str(Path(__file__).resolve().parent))

from traffic import compact, fresh_pcs

CREDENTIALS = (
    json.loads(Path(os.environ["FLK_LOAD_CREDENTIALS"]).read_text()) if "FLK_LOAD_CREDENTIALS" in os.environ else {}
)
TENANTS = [name for name in CREDENTIALS.get("tenants", {}) if name != "burst"]
MAX_REQUESTS = int(os.environ.get("FLK_LOAD_MAX_REQUESTS") or 0)
SLO_P95_MS = 200.0
JSON = {"Content-Type": "application/json"}
STATUSES: dict[str, Counter] = defaultdict(Counter)
_user_number = iter(range(1, 1_000_000))


def _address() -> str:
    n = next(_user_number)
    return f"10.2.{n // 250}.{n % 250 + 1}"


@events.request.add_listener
def _count(request_type, name, response=None, exception=None, **_kw) -> None:
    status = getattr(response, "status_code", None) if response is not None else None
    STATUSES[f"{request_type} {name}"][str(status) if status else type(exception).__name__ if exception else "?"] += 1
    if MAX_REQUESTS and sum(sum(c.values()) for c in STATUSES.values()) == MAX_REQUESTS:
        runner = _environment.runner if _environment else None
        if runner is not None:
            gevent.spawn_later(0, runner.quit)


_environment = None


@events.init.add_listener
def _keep(environment, **_kw) -> None:
    global _environment
    _environment = environment


def _expect(response, allowed: tuple[int, ...]) -> None:
    if response.status_code in allowed:
        response.success()
    else:
        response.failure(f"status {response.status_code}")


class Agent(FastHttpUser):
    weight = 12
    wait_time = between(0.05, 0.4)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = _address()
        self.delivered: list[tuple[str, bytes, str]] = []  # (tenant, body, pcs_id)

    def _post(self, tenant: str, body: bytes, name: str) -> None:
        with self.client.post("/v1/pcs/submit", data=body, name=name, catch_response=True,
                              headers={**JSON, "X-Tenant-Id": tenant, "X-Forwarded-For": self.address}) as r:  # fmt: skip
            _expect(r, (200, 202))

    @task(10)
    def submit(self) -> None:
        if self.delivered and self.rng.random() < 0.3:
            tenant, body, _ = self.rng.choice(self.delivered)
            self._post(tenant, body, "/v1/pcs/submit (replay)")
            return
        tenant = self.rng.choice(TENANTS)
        pcs = fresh_pcs(CREDENTIALS["tenants"][tenant]["hmac"], self.rng, degraded=self.rng.random() < 0.33)
        body = compact(pcs)
        self._post(tenant, body, "/v1/pcs/submit (fresh)")
        self.delivered = [*self.delivered[-199:], (tenant, body, pcs["pcs_id"])]

    @task(1)
    def read_outcome(self) -> None:
        if not self.delivered:
            return
        tenant, _, pcs_id = self.rng.choice(self.delivered)
        with self.client.get(f"/v1/pcs/{pcs_id}", name="/v1/pcs/<pcs_id>", catch_response=True,
                             headers={"X-Tenant-Id": tenant, "X-Forwarded-For": self.address,
                                      "Authorization": f"Bearer {CREDENTIALS['tenants'][tenant]['api_key']}"}) as r:  # fmt: skip
            _expect(r, (200,))


class BatchAgent(FastHttpUser):
    weight = 2
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = _address()

    @task
    def batch(self) -> None:
        tenant = self.rng.choice(TENANTS)
        secret = CREDENTIALS["tenants"][tenant]["hmac"]
        items = [
            fresh_pcs(secret, self.rng, degraded=self.rng.random() < 0.33) for _ in range(self.rng.randint(20, 100))
        ]
        body = json.dumps(items, separators=(",", ":")).encode()
        with self.client.post("/v1/pcs/batch", data=body, name="/v1/pcs/batch", catch_response=True,
                              headers={**JSON, "X-Tenant-Id": tenant, "X-Forwarded-For": self.address}) as r:  # fmt: skip
            _expect(r, (200,))


class Burst(FastHttpUser):
    weight = 1
    wait_time = between(5.0, 8.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = _address()

    @task
    def burst(self) -> None:
        secret = CREDENTIALS["tenants"]["burst"]["hmac"]
        for _ in range(25):
            body = compact(fresh_pcs(secret, self.rng))
            with self.client.post("/v1/pcs/submit", data=body, name="/v1/pcs/submit (burst)", catch_response=True,
                                  headers={**JSON, "X-Tenant-Id": "burst", "X-Forwarded-For": self.address}) as r:  # fmt: skip
                _expect(r, (200, 202, 429))


class Junk(FastHttpUser):
    weight = 1
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = _address()

    @task
    def junk(self) -> None:
        tenant = self.rng.choice(TENANTS)
        pcs = fresh_pcs("not-the-key", self.rng)
        _kind, body, headers = self.rng.choice([
            ("not JSON", b"{this is not json", {**JSON, "X-Tenant-Id": tenant}),
            ("bad signature", compact(pcs), {**JSON, "X-Tenant-Id": tenant}),
            ("unknown tenant", compact(pcs), {**JSON, "X-Tenant-Id": f"nobody-{self.rng.randrange(1000)}"}),
            ("wrong media type", compact(pcs), {"Content-Type": "text/plain", "X-Tenant-Id": tenant}),
            ("empty", b"", {**JSON, "X-Tenant-Id": tenant}),
        ])  # fmt: skip
        with self.client.post("/v1/pcs/submit", data=body, name="/v1/pcs/submit (junk)", catch_response=True,
                              headers={**headers, "X-Forwarded-For": self.address}) as r:  # fmt: skip
            _expect(r, (400, 401, 403, 413, 415, 429))


class SlowClient(FastHttpUser):
    """A client on a poor link: the request arrives in pieces over seconds. The proxy reads it whole first."""

    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = _address()
        host, port = self.host.removeprefix("http://").split(":")
        self.target = (host, int(port))

    @task
    def trickle(self) -> None:
        tenant = self.rng.choice(TENANTS)
        body = compact(fresh_pcs(CREDENTIALS["tenants"][tenant]["hmac"], self.rng))
        head = (f"POST /v1/pcs/submit HTTP/1.1\r\nHost: {self.target[0]}\r\nContent-Type: application/json\r\n"
                f"X-Tenant-Id: {tenant}\r\nX-Forwarded-For: {self.address}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()  # fmt: skip
        pieces = [head[: len(head) // 2], head[len(head) // 2 :]] + [
            body[i : i + 128] for i in range(0, len(body), 128)
        ]
        pause = self.rng.uniform(2.0, 4.0) / len(pieces)
        status, exception, size = None, None, 0
        try:
            with socket.create_connection(self.target, timeout=30) as sock:
                for n, piece in enumerate(pieces):
                    if n:
                        gevent.sleep(pause)
                    sock.sendall(piece)
                sent = time.perf_counter()
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
            status, size = (int(match.group(1)) if match else None), len(answer)
        except OSError as exc:
            exception, sent = exc, time.perf_counter()
        if exception is None and status not in (200, 202):
            exception = RuntimeError(f"status {status}")

        class _Answer:
            status_code = status

        # The time counted is from the last byte sent to the answer: what the service made the client wait.
        events.request.fire(request_type="POST", name="/v1/pcs/submit (slow client)",
                            response_time=(time.perf_counter() - sent) * 1000, response_length=size,
                            response=_Answer(), exception=exception, context={})  # fmt: skip


class _Browser(HttpUser):
    abstract = True

    def login(self, username: str, password: str) -> None:
        self.client.headers["X-Forwarded-For"] = _address()
        self.client.get("/accounts/login/", name="/accounts/login/ (page)")
        with self.client.post("/accounts/login/", name="/accounts/login/", allow_redirects=False, catch_response=True,
                              data={"username": username, "password": password, "next": "/review/",
                                    "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")}) as r:  # fmt: skip
            _expect(r, (302,))

    def form(self, **fields: str) -> dict[str, str]:
        return {"csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""), **fields}


class Reviewer(_Browser):
    fixed_count = 2
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        names = sorted(CREDENTIALS["reviewers"])
        self.username = names[next(_user_number) % len(names)]
        self.login(self.username, CREDENTIALS["reviewers"][self.username])

    @task(4)
    def label_next(self) -> None:
        with self.client.post("/review/next/", data=self.form(stream=""), name="/review/next/ (claim)",
                              allow_redirects=False, catch_response=True) as r:  # fmt: skip
            _expect(r, (302,))
            location = r.headers.get("Location", "")
        found = re.search(r"/review/item/(\d+)/", location)
        if not found:
            return  # the queue is empty for now
        item = found.group(1)
        self.client.get(f"/review/item/{item}/", name="/review/item/<id>/")
        with self.client.post(f"/review/item/{item}/label/", name="/review/item/<id>/label/", allow_redirects=False,
                              data=self.form(label=self.rng.choice(["benign", "benign", "anomalous"]), stream="",
                                             then="queue"), catch_response=True) as r:  # fmt: skip
            _expect(r, (302,))

    @task(1)
    def queue(self) -> None:
        self.client.get("/review/", name="/review/")


class Admin(_Browser):
    fixed_count = 1
    wait_time = between(2.0, 5.0)
    pages = ["/admin/", "/admin/ingest/pcsrecord/", "/admin/review/reviewitem/", "/admin/policy/verifyparams/",
             "/admin/tenancy/tenant/", "/review/stats/"]  # fmt: skip

    def on_start(self) -> None:
        username, password = next(iter(CREDENTIALS["admin"].items()))
        self.login(username, password)

    @task
    def browse(self) -> None:
        page = random.choice(self.pages)
        with self.client.get(page, name=f"{page} (admin)", catch_response=True) as r:
            _expect(r, (200,))


def _summary(environment) -> str:
    stats = environment.stats
    total = stats.total
    seconds = max(1e-9, (total.last_request_timestamp or time.time()) - total.start_time)
    lines = [
        f"{'endpoint':52s} {'requests':>8s} {'req/s':>7s} {'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s}  SLO  status mix"
    ]
    for key in sorted(stats.entries):
        entry = stats.entries[key]
        if not entry.num_requests:
            continue
        p95 = entry.get_response_time_percentile(0.95)
        mix = STATUSES.get(f"{entry.method} {entry.name}", Counter())
        lines.append(f"{entry.method + ' ' + entry.name:52s} {entry.num_requests:8d} {entry.num_requests / seconds:7.1f} "
                     f"{entry.get_response_time_percentile(0.5):7.0f} {p95:7.0f} "
                     f"{entry.get_response_time_percentile(0.99):7.0f}  {'meets' if p95 <= SLO_P95_MS else 'MISSES':6s}"
                     f" {dict(sorted(mix.items()))}")  # fmt: skip
    everything = Counter()
    for mix in STATUSES.values():
        everything.update(mix)
    lines.append(f"{'all':52s} {total.num_requests:8d} {total.num_requests / seconds:7.1f} "
                 f"{total.get_response_time_percentile(0.5):7.0f} {total.get_response_time_percentile(0.95):7.0f} "
                 f"{total.get_response_time_percentile(0.99):7.0f}       {dict(sorted(everything.items()))}")  # fmt: skip
    lines.append(f"unexpected answers (failures): {total.num_failures}; {seconds:.0f} s; SLO: p95 <= {SLO_P95_MS:.0f} ms "
                 "per endpoint on one replica")  # fmt: skip
    return "\n".join(lines)


@events.quitting.add_listener
def _print_summary(environment, **_kw) -> None:
    print("\n" + _summary(environment), flush=True)
    summary_path = os.environ.get("FLK_LOAD_SUMMARY")
    if summary_path:
        Path(summary_path).write_text(_summary(environment) + "\n")
