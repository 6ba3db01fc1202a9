"""Delivering outbox entries to the verifier: batches or single POSTs, backoff with jitter, Retry-After, the DLQ.

What happens to a PCS depends only on the server's answer for it:

- 200 or 202 with the verdict (a JSON object naming the PCS's pcs_id): delivered (202 is a verdict, not a
  failure: the PCS was escalated or rejected), acked. A 200 or 202 without it comes from something other
  than the verifier (a proxy's login page, say): the entry goes to the DLQ rather than being acked and lost.
- 400, 401, 403, 409, 413, 415 and any other 4xx but 408, 425 and 429: the server will never accept this
  body; moved to the DLQ with the status, the server's error and its reason (the error's ``code``), acked.
- 3xx: the endpoint is not the service's (a proxy sending http to https, say); redirects are not followed,
  and the entry goes to the DLQ with the redirect's target, for whoever fixes the endpoint.
- 429, 503 and other 5xx, 408, 425, a refused connection, a timeout: transient. The PCS stays pending and
  is tried again after the server's ``Retry-After`` when given, else after a capped exponential backoff with
  full jitter (uniform in [0, min(cap, base·2^(try−1))]), for as long as the retry budget lasts
  (``retry_budget`` seconds, hours by default) and, when set, ``max_attempts`` tries. Once either is spent
  the PCS is still pending: it stays in the outbox for the next run and never reaches the DLQ, which holds
  permanent refusals only. A configuration error of this side (a proxy URL requests cannot use) is not
  retried: the PCS stays pending, with the error, until the configuration is fixed.

Many pending PCS for one destination go as batches (``POST /v1/pcs/batch``, up to ``batch_size`` a
request): one HTTP exchange, and one WAL append and commit on the server, for the lot; each PCS gets the
answer it would get alone and is settled as above, on its own. A server without the batch endpoint (404,
405, 501, or an answer that is not the batch's) gets single submissions from then on; a batch too large
for it (413) is split in two.

Each try carries its number in ``attempt``. Under 0.1 that field is not signed. Under 0.2 it is, like every
field: a sender given a ``PcsSigner`` signs the PCS again for each try (a retry is then a new signature over
the same content, which the server answers as a replay); without one, a signed 0.2 PCS is sent exactly as it
was signed, every time.

Each entry goes where it was queued for: its tenant (``X-Tenant-Id``) and endpoint are kept in the outbox
with it; the sender's own tenant and endpoint only serve entries queued without them (earlier agents).
``Sender.stop`` (Ctrl-C or SIGTERM in ``send_many``) ends every send at its next wait or try: its entries
stay pending, for the next run. Delivery is at least once: a PCS is only acked after an answer, so a crash
resends it, and the server's dedup on ``pcs_id`` returns the first answer to the copy.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from agent_client.canonical import signs_everything
from agent_client.outbox import Entry, Outbox, dead_letter_reason
from agent_client.pcs import PcsSigner

log = logging.getLogger("agent_client.sender")

SUBMIT_PATH = "/v1/pcs/submit"
BATCH_PATH = "/v1/pcs/batch"
DEFAULT_TENANT = "default"  # the service's tenant for a request without X-Tenant-Id
DELIVERED = "delivered"
DEAD = "dead"
PENDING = "pending"  # not settled in this run (stopped, or the retry budget spent): the entry stays in the outbox
RETRY_AFTER_MAX = 3600.0  # a Retry-After longer than an hour is treated as an hour
DEFAULT_RETRY_BUDGET = 6 * 3600.0  # seconds a transient failure is retried in one run
DEFAULT_BATCH_SIZE = 500  # the service's default FLK_BATCH_MAX_ITEMS
BATCH_READ_TIMEOUT = 60.0  # a batch's answer waits for the verdicts of all its PCS
_TRANSIENT_4XX = (408, 425, 429)
_NO_BATCH_ENDPOINT = (404, 405, 501)
# Failures of this side's configuration, which no retry mends: the entries stay pending, with the error.
_CONFIGURATION_ERRORS = (
    requests.exceptions.InvalidProxyURL, requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader,
)  # fmt: skip


@dataclass
class Result:
    seq: int
    pcs_id: str
    outcome: str  # DELIVERED, DEAD or PENDING
    status: int | None
    attempts: int
    body: Any = None  # the verdict when delivered, else the last error
    reason: str = ""  # a dead letter's reason

    @property
    def decision(self) -> str:
        """What became of the PCS: accept, escalate or reject (delivered), duplicate (a replay of one stored
        before), dead or pending."""
        if self.outcome != DELIVERED:
            return self.outcome
        verdict = self.body if isinstance(self.body, dict) else {}
        return "duplicate" if verdict.get("dedup") else str(verdict.get("decision", "accept"))


@dataclass
class DrainSummary:
    delivered: int = 0
    dead: int = 0
    pending: int = 0  # not settled in this run: still in the outbox
    accepted: int = 0
    escalated: int = 0
    rejected: int = 0
    duplicates: int = 0  # replays answered with the stored verdict
    results: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.results.append(result)
        if result.outcome == DELIVERED:
            self.delivered += 1
            decision = result.decision
            if decision == "duplicate":
                self.duplicates += 1
            elif decision == "escalate":
                self.escalated += 1
            elif decision == "reject":
                self.rejected += 1
            else:
                self.accepted += 1
        elif result.outcome == DEAD:
            self.dead += 1
        else:
            self.pending += 1


def service_url(endpoint: str) -> str:
    """The service's base URL from an endpoint given as that URL or as its submit or batch URL.

    A URL that is not http(s) with a host is a ValueError here, not tries that can never succeed.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"the endpoint must be an http:// or https:// URL with a host, e.g. http://host:8000; got {endpoint!r}"
        )
    endpoint = endpoint.rstrip("/")
    for path in (SUBMIT_PATH, BATCH_PATH):
        endpoint = endpoint.removesuffix(path)
    return endpoint


def submit_url(endpoint: str) -> str:
    """The submit URL for an endpoint given as the service's base URL or the full submit URL."""
    return service_url(endpoint) + SUBMIT_PATH


def batch_url(endpoint: str) -> str:
    """The batch URL for an endpoint given as the service's base URL or its submit URL."""
    return service_url(endpoint) + BATCH_PATH


def retry_after_seconds(value: str | float | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        value = str(value).strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
            except (TypeError, ValueError, IndexError):
                return None
    if math.isnan(seconds):
        return None
    return min(RETRY_AFTER_MAX, max(0.0, seconds))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base·2^(attempt−1))] for the attempt-th retry (1-based)."""
    return rng.uniform(0.0, min(cap, base * (2 ** min(attempt - 1, 64))))


@dataclass(frozen=True)
class _Judgement:
    outcome: str  # DELIVERED, DEAD, or PENDING for a transient failure (tried again while the budget lasts)
    error: str = ""
    reason: str = ""
    wait: float | None = None  # the server's Retry-After, for a transient failure


def _judge(status: int, answer: Any, pcs_id: str, retry_after: Any, location: str | None = None) -> _Judgement:
    """What one answer of the service means for one PCS (the module docstring's table)."""
    if status in (200, 202):
        if isinstance(answer, dict) and answer.get("pcs_id") == pcs_id:
            return _Judgement(DELIVERED)
        error = (f"the endpoint answered {status} without this PCS's verdict: is it the verifier, or is a proxy "
                 "answering instead?")  # fmt: skip
        return _Judgement(DEAD, error, "not_a_verdict")
    error = (answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False))[:2000]
    if 300 <= status < 400:  # a POST redirected would be resent as a GET, or to where nobody chose
        return _Judgement(DEAD, f"the endpoint redirects to {location or 'nowhere'}: give that URL as the endpoint",
                          "redirect")  # fmt: skip
    if 400 <= status < 500 and status not in _TRANSIENT_4XX:
        return _Judgement(DEAD, error, dead_letter_reason(status, error))
    return _Judgement(PENDING, error, wait=retry_after_seconds(retry_after) if status in (429, 503) else None)


class Sender:
    """Sends outbox entries to the verifier at ``endpoint`` (its base URL, or its submit URL).

    ``tenant`` and ``endpoint`` are where ``submit`` queues a PCS for, and where an entry queued without a
    destination goes. ``batch_size`` 1 sends every PCS on its own.
    """

    def __init__(
        self,
        endpoint: str,
        outbox: Outbox,
        *,
        tenant: str | None = None,
        max_attempts: int | None = None,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        base_delay: float = 0.2,
        max_delay: float = 60.0,
        timeout: float = 10.0,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
        signer: PcsSigner | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if not retry_budget >= 0:
            raise ValueError(f"retry_budget must be 0 or more seconds, got {retry_budget}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.endpoint = service_url(endpoint)
        self.url = self.endpoint + SUBMIT_PATH
        self.outbox = outbox
        self.tenant = tenant
        self.max_attempts = max_attempts
        self.retry_budget = retry_budget
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.batch_size = batch_size
        self.clock = clock
        self._stopped = threading.Event()
        self.sleep = sleep or self._stopped.wait  # a wait that ``stop`` cuts short
        self.rng = rng or random.Random()
        self.signer = signer  # signs a 0.2 PCS again for each try; None sends it as it was signed
        self._local = threading.local()  # one _Lane per thread and URL: requests sessions are not thread-safe
        self._no_batch: set[str] = set()  # services found without the batch endpoint

    # -- where an entry goes -------------------------------------------------------------------------------

    def destination(self, entry: Entry) -> tuple[str, str]:
        """The service base URL and tenant an entry goes to: its own, else this sender's."""
        endpoint = service_url(entry.endpoint) if entry.endpoint else self.endpoint
        tenant = entry.tenant if entry.tenant is not None else self.tenant
        return endpoint, tenant or DEFAULT_TENANT

    def _lane(self, url: str, tenant: str) -> _Lane:
        """This thread's way to ``url`` as ``tenant``, set up once as requests would set up every POST.

        What the environment says for the endpoint (HTTP(S)_PROXY and NO_PROXY, REQUESTS_CA_BUNDLE, ~/.netrc)
        is read once, the request's headers merged and its credentials applied once, and the connection pool
        (direct or through the proxy, with the TLS settings) chosen once, all by requests itself. Each POST
        then goes straight to that urllib3 pool: requests' own handling of every call (merging settings,
        hooks, cookies, building its Response) cost about a third of the agent's CPU per PCS. Cookies the
        service might set are therefore not sent back; the API sets none.
        """
        lanes = getattr(self._local, "lanes", None)
        if lanes is None:
            lanes = self._local.lanes = {}
        lane = lanes.get((url, tenant))
        if lane is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=4, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            settings = session.merge_environment_settings(url, {}, None, None, None)
            session.auth = requests.utils.get_netrc_auth(url)
            # The service takes no X-Tenant-Id as its default tenant: the header is left out for it, as before.
            headers = {"Content-Type": "application/json",
                       **({"X-Tenant-Id": tenant} if tenant != DEFAULT_TENANT else {})}  # fmt: skip
            request = session.prepare_request(requests.Request("POST", url, headers=headers))
            proxies = settings["proxies"]
            pool = adapter.get_connection_with_tls_context(request, settings["verify"], proxies, settings["cert"])
            read = BATCH_READ_TIMEOUT if url.endswith(BATCH_PATH) else self.timeout
            lane = lanes[(url, tenant)] = _Lane(
                session,  # keeps the adapter's pools alive
                pool,
                adapter.request_url(request, proxies),
                {name: value for name, value in request.headers.items() if name.lower() != "content-length"},
                adapter.max_retries,
                urllib3.Timeout(connect=self.timeout, read=max(read, self.timeout)),
            )
        return lane

    def _post(self, url: str, tenant: str, body: bytes) -> _Reply:
        try:
            lane = self._lane(url, tenant)  # requests' own errors (a proxy URL it cannot use) come up as they are
            raw = lane.pool.urlopen(
                "POST", lane.target, body=body, headers=lane.headers, redirect=False, assert_same_host=False,
                preload_content=True, decode_content=True, retries=lane.retries, timeout=lane.timeout,
            )  # fmt: skip
        except requests.RequestException:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _as_requests_error(exc) from exc
        return _Reply(raw.status, raw.headers, raw.data)

    # -- sending -------------------------------------------------------------------------------------------

    def submit(self, pcs: dict[str, Any]) -> Result:
        """Append ``pcs`` to the outbox (durably) for this sender's tenant and endpoint, then deliver it."""
        return self.send(self.outbox.append(pcs, self.tenant or DEFAULT_TENANT, self.endpoint))

    def stop(self) -> None:
        """For good: no further try starts, and waits between tries end now; the entries being sent stay pending."""
        self._stopped.set()

    def _out_of_time(self, attempt: int, started: float) -> bool:
        spent = self.max_attempts is not None and attempt >= self.max_attempts
        return spent or self.clock() - started >= self.retry_budget

    def _wait(self, wait: float | None, attempt: int, started: float) -> float:
        if wait is None:
            wait = backoff_delay(attempt, self.base_delay, self.max_delay, self.rng)
        return max(0.0, min(wait, self.retry_budget - (self.clock() - started)))

    def send(self, entry: Entry) -> Result:
        """Deliver one entry on its own: retry as the module docstring says, then ack it, move it to the DLQ,
        or leave it pending."""
        pcs_id = str(entry.pcs.get("pcs_id", ""))
        endpoint, tenant = self.destination(entry)
        url = endpoint + SUBMIT_PATH
        status: int | None = None
        error = ""
        started = self.clock()
        attempt = 0
        while True:
            if self._stopped.is_set():
                return Result(entry.seq, pcs_id, PENDING, status, attempt, error)
            attempt += 1
            body = self._body_for_try(entry.pcs, attempt)
            wait: float | None = None
            try:
                response = self._post(url, tenant, body)
            except requests.RequestException as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
                if isinstance(exc, _CONFIGURATION_ERRORS):
                    return self._pending(entry, pcs_id, status, f"not sent, fix the configuration: {error}", attempt)
            else:
                status = response.status_code
                answer = _json_or_text(response)
                judged = _judge(status, answer, pcs_id, response.headers.get("Retry-After"),
                                response.headers.get("Location"))  # fmt: skip
                if judged.outcome == DELIVERED:
                    self.outbox.ack(entry.seq)
                    log.info("delivered pcs_id=%s seq=%d status=%d attempts=%d", pcs_id, entry.seq, status, attempt)
                    return Result(entry.seq, pcs_id, DELIVERED, status, attempt, answer)
                if judged.outcome == DEAD:
                    return self._dead(entry, pcs_id, status, judged.error, attempt, judged.reason)
                error, wait = judged.error, judged.wait
            if self._out_of_time(attempt, started):
                return self._pending(entry, pcs_id, status, error, attempt)
            wait = self._wait(wait, attempt, started)
            log.warning(
                "retrying pcs_id=%s seq=%d status=%s attempt=%d wait=%.3fs", pcs_id, entry.seq, status, attempt, wait
            )
            self.sleep(wait)

    def send_batch(self, entries: list[Entry]) -> list[Result]:
        """Deliver entries of one destination as batches: every entry settled on its own answer, the unsettled
        ones sent again together. Falls back to ``send`` against a service without the batch endpoint."""
        if not entries:
            return []
        endpoint, tenant = self.destination(entries[0])
        url = endpoint + BATCH_PATH
        if url in self._no_batch or len(entries) == 1:
            return [self.send(entry) for entry in entries]
        results: dict[int, Result] = {}
        last: dict[int, tuple[int | None, str]] = {}
        todo = list(entries)
        started = self.clock()
        attempt = 0
        while todo:
            if self._stopped.is_set():
                break
            attempt += 1
            payload = b"[" + b",".join(self._body_for_try(e.pcs, attempt) for e in todo) + b"]"
            wait: float | None = None
            try:
                response = self._post(url, tenant, payload)
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, _CONFIGURATION_ERRORS):
                    error = f"not sent, fix the configuration: {error}"
                    last.update({e.seq: (None, error) for e in todo})
                    break
                last.update({e.seq: (None, error) for e in todo})
            else:
                status = response.status_code
                answer = _json_or_text(response)
                items = answer.get("results") if status == 200 and isinstance(answer, dict) else None
                if status in _NO_BATCH_ENDPOINT or (status == 200 and not _batch_results(items, len(todo))):
                    # Not the batch endpoint of a verifier: single submissions from now on, to this service.
                    log.info("no batch endpoint at %s (HTTP %d): sending PCS one by one", url, status)
                    self._no_batch.add(url)
                    return [results.get(e.seq) or self.send(e) for e in entries]
                if status == 413 and len(todo) > 1:  # more than the service takes at once: halves
                    half = len(todo) // 2
                    for part in (todo[:half], todo[half:]):
                        results.update((r.seq, r) for r in self.send_batch(part))
                    todo = []
                    break
                if status == 200:
                    assert items is not None
                    todo, wait = self._settle_batch(todo, items, attempt, results, last)
                else:  # an answer for the whole batch (401 unknown tenant, 503 database down, 429, ...)
                    judged = _judge(status, answer, "", response.headers.get("Retry-After"),
                                    response.headers.get("Location"))  # fmt: skip
                    if judged.outcome == DEAD or (judged.outcome == DELIVERED):
                        for e in todo:
                            pcs_id = str(e.pcs.get("pcs_id", ""))
                            results[e.seq] = self._dead(e, pcs_id, status, judged.error, attempt, judged.reason)
                        todo = []
                        break
                    last.update({e.seq: (status, judged.error) for e in todo})
                    wait = judged.wait
            if todo and self._out_of_time(attempt, started):
                break
            if todo:
                wait = self._wait(wait, attempt, started)
                log.warning("retrying a batch of %d PCS (%s) attempt=%d wait=%.3fs", len(todo),
                            last[todo[0].seq][1][:200] or "no answer", attempt, wait)  # fmt: skip
                self.sleep(wait)
        for e in todo:  # stopped, or out of time: still pending
            status, error = last.get(e.seq, (None, ""))
            results[e.seq] = self._pending(e, str(e.pcs.get("pcs_id", "")), status, error, attempt)
        return [results[e.seq] for e in entries]

    def _settle_batch(
        self,
        todo: list[Entry],
        items: list[dict[str, Any]],
        attempt: int,
        results: dict[int, Result],
        last: dict[int, tuple[int | None, str]],
    ) -> tuple[list[Entry], float | None]:
        """Settle each entry of a batch by its own answer; return those to send again and the longest
        Retry-After among them."""
        acked: list[Result] = []
        again: list[Entry] = []
        waits: list[float] = []
        for entry, item in zip(todo, items, strict=True):
            pcs_id = str(entry.pcs.get("pcs_id", ""))
            status, answer = item["status"], item.get("body")
            judged = _judge(status, answer, pcs_id, item.get("retry_after"))
            if judged.outcome == DELIVERED:
                acked.append(Result(entry.seq, pcs_id, DELIVERED, status, attempt, answer))
            elif judged.outcome == DEAD:
                results[entry.seq] = self._dead(entry, pcs_id, status, judged.error, attempt, judged.reason)
            else:
                again.append(entry)
                last[entry.seq] = (status, judged.error)
                if judged.wait is not None:
                    waits.append(judged.wait)
        self.outbox.ack_many(r.seq for r in acked)  # one write for the batch's verdicts
        for result in acked:
            results[result.seq] = result
        log.info("delivered %d of a batch of %d attempt=%d", len(acked), len(todo), attempt)
        return again, (max(waits) if waits else None)

    def _body_for_try(self, pcs: dict[str, Any], attempt: int) -> bytes:
        """The bytes of one try: ``attempt`` set to its number where that keeps the signature valid."""
        if not signs_everything(pcs) or (self.signer is None and not pcs.get("sig")):
            pcs["attempt"] = attempt  # not signed (0.1, or no signature at all): it tells the server which try
        elif self.signer is not None:
            # 0.2 signs it, and the outbox may have numbered ft.outbox_seq since the PCS was signed: sign now.
            pcs["attempt"] = attempt
            self.signer.sign(pcs)
        # A signed 0.2 PCS without a signer goes as it was signed: a retry is the same bytes, a replay.
        return json.dumps(pcs, separators=(",", ":"), ensure_ascii=False).encode()

    def _dead(
        self, entry: Entry, pcs_id: str, status: int | None, error: str, attempts: int, reason: str = ""
    ) -> Result:
        self.outbox.dead(entry, status, error, reason)
        reason = reason or dead_letter_reason(status, error)
        log.error("dead letter pcs_id=%s seq=%d status=%s reason=%s attempts=%d", pcs_id, entry.seq, status, reason,
                  attempts, extra={"dead_letter": pcs_id})  # fmt: skip
        return Result(entry.seq, pcs_id, DEAD, status, attempts, error, reason)

    def _pending(self, entry: Entry, pcs_id: str, status: int | None, error: str, attempts: int) -> Result:
        if not self._stopped.is_set():
            log.warning("left pending pcs_id=%s seq=%d status=%s attempts=%d: %s", pcs_id, entry.seq, status,
                        attempts, error[:200])  # fmt: skip
        return Result(entry.seq, pcs_id, PENDING, status, attempts, error)

    def drain(self, concurrency: int = 1, on_result: Callable[[Result], None] | None = None) -> DrainSummary:
        """Send every pending entry (oldest first), ``concurrency`` at a time; return what happened."""
        return self.send_many(self.outbox.pending(), concurrency, on_result)

    def _units(self, entries: Iterable[Entry], concurrency: int) -> list[list[Entry]]:
        """The entries cut into what one thread sends at a time: batches of one destination where there are
        several entries for it (no more than share the threads evenly), single entries otherwise."""
        groups: dict[tuple[str, str], list[Entry]] = {}
        for entry in entries:
            groups.setdefault(self.destination(entry), []).append(entry)
        units: list[list[Entry]] = []
        for group in groups.values():
            size = min(self.batch_size, max(1, math.ceil(len(group) / concurrency)))
            if size < 2:
                units += [[entry] for entry in group]
            else:
                units += [group[i : i + size] for i in range(0, len(group), size)]
        return units

    def _send_unit(self, unit: list[Entry]) -> list[Result]:
        return [self.send(unit[0])] if len(unit) == 1 else self.send_batch(unit)

    def send_many(
        self, entries: Iterable[Entry], concurrency: int = 1, on_result: Callable[[Result], None] | None = None
    ) -> DrainSummary:
        """Deliver the entries, in batches per destination where there are several, ``concurrency`` requests at
        a time; ``on_result`` hears of each entry as its request ends.

        Interrupted (Ctrl-C, or SIGTERM made one), it stops the sends still going before it lets the
        interruption through, so that it returns within one HTTP exchange instead of after every retry,
        and those entries stay pending rather than reaching the DLQ.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        summary = DrainSummary()
        units = self._units(entries, concurrency)
        with ThreadPoolExecutor(max_workers=concurrency) if concurrency > 1 else nullcontext() as pool:
            try:
                for results in map(self._send_unit, units) if pool is None else pool.map(self._send_unit, units):
                    for result in results:
                        summary.add(result)
                        if on_result:
                            on_result(result)
            except BaseException:
                self.stop()  # before the pool waits for its threads
                raise
        return summary


def _batch_results(items: Any, count: int) -> bool:
    """Whether a batch answer's ``results`` are one answer per PCS sent, as the verifier gives them."""
    return (
        isinstance(items, list)
        and len(items) == count
        and all(isinstance(i, dict) and isinstance(i.get("status"), int) for i in items)
    )


class _Lane(NamedTuple):
    session: requests.Session
    pool: urllib3.connectionpool.HTTPConnectionPool
    target: str  # what the request line names: the path, or the whole URL to a plain-HTTP proxy
    headers: dict[str, str]
    retries: urllib3.Retry
    timeout: urllib3.Timeout


@dataclass(frozen=True)
class _Reply:
    """The service's answer: what the sender reads of it."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive, as urllib3 gives them
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _as_requests_error(exc: BaseException) -> requests.RequestException:
    """The exception requests would have raised for this failure, so that dead letters read as before."""
    errors = urllib3.exceptions
    reason = exc.reason if isinstance(exc, errors.MaxRetryError) else exc
    if isinstance(reason, errors.ConnectTimeoutError) and not isinstance(reason, errors.NewConnectionError):
        return requests.exceptions.ConnectTimeout(reason)  # urllib3 makes a refused connection a kind of timeout
    if isinstance(reason, errors.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(reason)
    if isinstance(reason, errors.ProxyError):
        return requests.exceptions.ProxyError(reason)
    if isinstance(reason, errors.SSLError):
        return requests.exceptions.SSLError(reason)
    return requests.exceptions.ConnectionError(reason)


def _json_or_text(response: _Reply) -> Any:
    """The answer's JSON (UTF-8, as JSON is, which json.loads reads from bytes), else its text."""
    try:
        return json.loads(response.content)
    except ValueError:
        return response.text
