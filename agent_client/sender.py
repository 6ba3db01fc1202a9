"""Delivering outbox entries to the verifier: POST, backoff with full jitter, Retry-After, the DLQ.

What happens to an entry depends only on the server's answer:

- 200 or 202 with the verdict (a JSON object naming the PCS's pcs_id): delivered (202 is a verdict, not a
  failure: the PCS was escalated or rejected), acked. A 200 or 202 without it comes from something other
  than the verifier (a proxy's login page, say): the entry goes to the DLQ rather than being acked and lost.
- 400, 401, 409 and any other 4xx except 429: the server will never accept this body; moved to the DLQ with
  the status and the server's error, acked.
- 3xx: the endpoint is not the service's (a proxy sending http to https, say); redirects are not followed,
  and the entry goes to the DLQ with the redirect's target, for whoever fixes the endpoint.
- 429 and 503: the server asks to wait; the wait is its ``Retry-After`` (seconds) when given.
- other 5xx and network errors: retried after an exponential backoff with full jitter
  (a uniform wait in [0, min(cap, base·2^attempt)]).

Each try carries its number in ``attempt``. Under 0.1 that field is not signed. Under 0.2 it is, like every
field: a sender given a ``PcsSigner`` signs the PCS again for each try (a retry is then a new signature over
the same content, which the server answers as a replay); without one, a signed 0.2 PCS is sent exactly as it
was signed, every time.

Every retry of any kind uses one of ``max_attempts``; when they are spent the entry goes to the DLQ with
the last error. ``Sender.stop`` (Ctrl-C or SIGTERM in ``send_many``) ends every send at its next wait or
try: its entry stays pending, for the next run, instead of going on to the DLQ. Delivery is at least
once: a PCS is only acked after an answer, so a crash resends it, and the server's dedup on ``pcs_id``
returns the first answer to the copy.
"""

from __future__ import annotations

import json
import logging
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
from agent_client.outbox import Entry, Outbox
from agent_client.pcs import PcsSigner

log = logging.getLogger("agent_client.sender")

SUBMIT_PATH = "/v1/pcs/submit"
DELIVERED = "delivered"
DEAD = "dead"
PENDING = "pending"  # stopped before an answer that settles it: the entry stays in the outbox
RETRY_AFTER_MAX = 3600.0  # a Retry-After longer than an hour is treated as an hour


@dataclass
class Result:
    seq: int
    pcs_id: str
    outcome: str  # DELIVERED, DEAD or PENDING
    status: int | None
    attempts: int
    body: Any = None


@dataclass
class DrainSummary:
    delivered: int = 0
    dead: int = 0
    pending: int = 0  # stopped before their answer: still in the outbox
    results: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.results.append(result)
        if result.outcome == DELIVERED:
            self.delivered += 1
        elif result.outcome == DEAD:
            self.dead += 1
        else:
            self.pending += 1


def submit_url(endpoint: str) -> str:
    """The submit URL for an endpoint given as the service's base URL or the full submit URL.

    A URL that is not http(s) with a host is a ValueError here, not eight failed tries and a dead letter.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"the endpoint must be an http:// or https:// URL with a host, e.g. http://host:8000; got {endpoint!r}"
        )
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(SUBMIT_PATH) else endpoint + SUBMIT_PATH


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError):
            return None
    return min(RETRY_AFTER_MAX, max(0.0, seconds))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base·2^(attempt−1))] for the attempt-th retry (1-based)."""
    return rng.uniform(0.0, min(cap, base * (2 ** (attempt - 1))))


class Sender:
    """Sends outbox entries to ``endpoint`` (base URL of the service, or its submit URL)."""

    def __init__(
        self,
        endpoint: str,
        outbox: Outbox,
        *,
        tenant: str | None = None,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 30.0,
        timeout: float = 10.0,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
        signer: PcsSigner | None = None,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.url = submit_url(endpoint)
        self.outbox = outbox
        self.tenant = tenant
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._stopped = threading.Event()
        self.sleep = sleep or self._stopped.wait  # a wait that ``stop`` cuts short
        self.rng = rng or random.Random()
        self.signer = signer  # signs a 0.2 PCS again for each try; None sends it as it was signed
        self._local = threading.local()  # one _Lane per thread: requests sessions are not thread-safe

    def _lane(self) -> _Lane:
        """This thread's way to the endpoint, set up once as requests would set up every POST.

        What the environment says for the endpoint (HTTP(S)_PROXY and NO_PROXY, REQUESTS_CA_BUNDLE, ~/.netrc)
        is read once, the request's headers merged and its credentials applied once, and the connection pool
        (direct or through the proxy, with the TLS settings) chosen once, all by requests itself. Each POST
        then goes straight to that urllib3 pool: requests' own handling of every call (merging settings,
        hooks, cookies, building its Response) cost about a third of the agent's CPU per PCS. Cookies the
        service might set are therefore not sent back; the API sets none.
        """
        lane = getattr(self._local, "lane", None)
        if lane is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=4, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            settings = session.merge_environment_settings(self.url, {}, None, None, None)
            session.auth = requests.utils.get_netrc_auth(self.url)
            headers = {"Content-Type": "application/json", **({"X-Tenant-Id": self.tenant} if self.tenant else {})}
            request = session.prepare_request(requests.Request("POST", self.url, headers=headers))
            proxies = settings["proxies"]
            pool = adapter.get_connection_with_tls_context(request, settings["verify"], proxies, settings["cert"])
            lane = self._local.lane = _Lane(
                session,  # keeps the adapter's pools alive
                pool,
                adapter.request_url(request, proxies),
                {name: value for name, value in request.headers.items() if name.lower() != "content-length"},
                adapter.max_retries,
                urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
        return lane

    def _post(self, body: bytes) -> _Reply:
        try:
            lane = self._lane()  # requests' own errors (a proxy URL it cannot use) come up as they are
            raw = lane.pool.urlopen(
                "POST", lane.target, body=body, headers=lane.headers, redirect=False, assert_same_host=False,
                preload_content=True, decode_content=True, retries=lane.retries, timeout=lane.timeout,
            )  # fmt: skip
        except requests.RequestException:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _as_requests_error(exc) from exc
        return _Reply(raw.status, raw.headers, raw.data)

    def submit(self, pcs: dict[str, Any]) -> Result:
        """Append ``pcs`` to the outbox (durably), then deliver it."""
        return self.send(self.outbox.append(pcs))

    def stop(self) -> None:
        """For good: no further try starts, and waits between tries end now; the entries being sent stay pending."""
        self._stopped.set()

    def send(self, entry: Entry) -> Result:
        """Deliver one entry: retry as the module docstring says, then ack it or move it to the DLQ."""
        pcs_id = str(entry.pcs.get("pcs_id", ""))
        status: int | None = None
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            if self._stopped.is_set():
                return Result(entry.seq, pcs_id, PENDING, status, attempt - 1, error)
            body = self._body_for_try(entry.pcs, attempt)
            wait: float | None = None
            try:
                response = self._post(body)
            except requests.RequestException as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status in (200, 202):
                    answer = _json_or_text(response)
                    if not (isinstance(answer, dict) and answer.get("pcs_id") == pcs_id):
                        # Not the verifier's verdict (a proxy's login page, another server): acking would lose it.
                        kind = response.headers.get("Content-Type") or "no Content-Type"
                        error = (f"the endpoint answered {status} ({kind}) without this PCS's verdict: is it the "
                                 "verifier, or is a proxy answering instead?")  # fmt: skip
                        return self._dead(entry, pcs_id, status, error, attempt)
                    self.outbox.ack(entry.seq)
                    log.info("delivered pcs_id=%s seq=%d status=%d attempts=%d", pcs_id, entry.seq, status, attempt)
                    return Result(entry.seq, pcs_id, DELIVERED, status, attempt, answer)
                error = response.text[:2000]
                if 300 <= status < 400:  # a POST redirected would be resent as a GET, or to where nobody chose
                    where = response.headers.get("Location", "nowhere")
                    error = f"the endpoint redirects to {where}: give that URL as the endpoint"
                    return self._dead(entry, pcs_id, status, error, attempt)
                if 400 <= status < 500 and status != 429:
                    return self._dead(entry, pcs_id, status, error, attempt)
                if status in (429, 503):
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == self.max_attempts:
                break
            if wait is None:
                wait = backoff_delay(attempt, self.base_delay, self.max_delay, self.rng)
            log.warning(
                "retrying pcs_id=%s seq=%d status=%s attempt=%d wait=%.3fs", pcs_id, entry.seq, status, attempt, wait
            )
            self.sleep(wait)
        if self._stopped.is_set():  # stopped during the last try: no reason to give up on it yet
            return Result(entry.seq, pcs_id, PENDING, status, self.max_attempts, error)
        return self._dead(
            entry, pcs_id, status, f"gave up after {self.max_attempts} attempts: {error}", self.max_attempts
        )

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

    def _dead(self, entry: Entry, pcs_id: str, status: int | None, error: str, attempts: int) -> Result:
        self.outbox.dead(entry, status, error)
        log.error("dead letter pcs_id=%s seq=%d status=%s attempts=%d", pcs_id, entry.seq, status, attempts,
                  extra={"dead_letter": pcs_id})  # fmt: skip
        return Result(entry.seq, pcs_id, DEAD, status, attempts, error)

    def drain(self, concurrency: int = 1, on_result: Callable[[Result], None] | None = None) -> DrainSummary:
        """Send every pending entry (oldest first), ``concurrency`` at a time; return what happened."""
        return self.send_many(self.outbox.pending(), concurrency, on_result)

    def send_many(
        self, entries: Iterable[Entry], concurrency: int = 1, on_result: Callable[[Result], None] | None = None
    ) -> DrainSummary:
        """``send`` each entry, ``concurrency`` at a time; ``on_result`` hears of each in the entries' order.

        Interrupted (Ctrl-C, or SIGTERM made one), it stops the sends still going before it lets the
        interruption through, so that it returns within one HTTP exchange instead of after every retry,
        and those entries stay pending rather than reaching the DLQ.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        summary = DrainSummary()
        with ThreadPoolExecutor(max_workers=concurrency) if concurrency > 1 else nullcontext() as pool:
            try:
                for result in map(self.send, entries) if pool is None else pool.map(self.send, entries):
                    summary.add(result)
                    if on_result:
                        on_result(result)
            except BaseException:
                self.stop()  # before the pool waits for its threads
                raise
        return summary


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
