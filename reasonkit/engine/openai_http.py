"""The HTTP side of the OpenAI-compatible backend: replicas, bounded concurrency, retries.

Client: ``httpx.AsyncClient``. We use httpx directly rather than the ``openai`` package because the
requests we send are mostly servers' extensions (vLLM's ``return_token_ids``,
``continue_final_message``, ``chat_template_kwargs``, ``/v1/load_lora_adapter``), because the retry
policy below has to see every status and header (``Retry-After``) itself, and because httpx is what
the ``openai`` package is built on anyway (one dependency less to track).

* **Concurrency**: one ``asyncio.Semaphore`` of ``concurrency`` requests in flight over all replicas.
* **Timeout**: per request (``timeout`` seconds for one HTTP exchange), never for the whole session.
* **Retries**: only on transient failures — connection errors, timeouts, dropped connections,
  malformed JSON in a 200 answer, HTTP 408, 429 and 5xx — up to ``max_retries`` times with
  exponential backoff and full jitter (a uniform wait in ``[0, min(cap, base * 2**attempt)]``);
  a ``Retry-After`` header (seconds or an HTTP date) sets the wait instead (capped at ``cap``).
  Other 4xx answers are never retried: they come back as :class:`RequestRefused`.
* **Replicas**: each request goes to the replica with the fewest requests in flight (ties: round
  robin), and a retry goes to another replica when there is one. After ``eject_after`` failures in a row
  a replica leaves the rotation for ``cooldown`` seconds, with a warning; when every replica is out,
  the one that left first is tried.
* **Secrets**: the API key goes only into the ``Authorization`` header; it is never part of an
  error message (errors name the replica's URL without user info, the status and the server's
  message).
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RequestFailed(Exception):
    """A request that still failed after its retries (or at a replica that is down)."""


class RequestRefused(Exception):
    """A 4xx answer (not 408/429): the request itself is wrong; never retried."""

    def __init__(self, status: int, message: str, url: str):
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status, self.message, self.url = status, message, url


def public_url(url: str) -> str:
    """``url`` without user:password@ (safe to log and to save in config.json)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * (2 ** attempt)))


def server_message(body: Any, text: str) -> str:
    """The error message of an OpenAI-style error body, else the start of the text."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(body.get("message"), str):
            return body["message"][:300]
    return " ".join(text.split())[:300] or "(empty body)"


@dataclass
class Replica:
    url: str  # base URL including /v1
    in_flight: int = 0
    failures: int = 0  # consecutive
    out_until: float = 0.0
    served: int = 0

    @property
    def label(self) -> str:
        return public_url(self.url)


@dataclass
class Pool:
    """The replicas of one backend and the retry policy shared by all its requests."""
    urls: list[str]
    api_key: str | None = None
    timeout: float = 300.0
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    eject_after: int = 3
    cooldown: float = 30.0
    seed: int = 0
    warn: Callable[[str], None] = print
    replicas: list[Replica] = field(init=False)

    def __post_init__(self) -> None:
        self.replicas = [Replica(u.rstrip("/")) for u in self.urls]
        self._rng = random.Random(self.seed)
        self._turn = 0

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def client(self, concurrency: int):
        import httpx

        limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
        return httpx.AsyncClient(headers=self.headers(), limits=limits, timeout=httpx.Timeout(self.timeout))

    def pick(self, avoid: Replica | None = None) -> Replica:
        now = time.monotonic()
        live = [r for r in self.replicas if r.out_until <= now]
        if avoid is not None and len(live) > 1:
            live = [r for r in live if r is not avoid] or live
        if not live:  # every replica is out: try the one whose time out ends first
            return min(self.replicas, key=lambda r: r.out_until)
        low = min(r.in_flight for r in live)
        ties = [r for r in live if r.in_flight == low]
        self._turn += 1
        return ties[self._turn % len(ties)]

    def _failed(self, replica: Replica, why: str) -> None:
        replica.failures += 1
        if replica.failures >= self.eject_after and replica.out_until <= time.monotonic() \
                and len(self.replicas) > 1:
            replica.out_until = time.monotonic() + self.cooldown
            self.warn(f"replica {replica.label} failed {replica.failures} times in a row ({why}); "
                      f"out of rotation for {self.cooldown:g} s")

    async def request(self, client, method: str, path: str, payload: dict | None = None) -> dict:
        """One JSON request with the retry policy; returns the parsed body."""
        import httpx

        last = "no attempt"
        replica: Replica | None = None
        for attempt in range(self.max_retries + 1):
            replica = self.pick(avoid=replica)
            url = replica.url + path
            wait = None
            replica.in_flight += 1
            try:
                resp = await client.request(method, url, json=payload)
            except httpx.TimeoutException:
                last = f"no answer from {replica.label} within {self.timeout:g} s"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__} talking to {replica.label}"
            else:
                text = resp.text
                try:
                    body = json.loads(text) if text else None
                except ValueError:
                    body = None
                if resp.status_code < 300:
                    if isinstance(body, dict):
                        replica.failures = 0
                        replica.served += 1
                        return body
                    last = f"malformed JSON from {replica.label} ({text[:60]!r})"
                elif resp.status_code in TRANSIENT_STATUS or resp.status_code >= 500:
                    last = f"HTTP {resp.status_code} from {replica.label}: {server_message(body, text)}"
                    wait = retry_after_seconds(resp.headers.get("retry-after"))
                else:
                    replica.failures = 0  # the replica answered; the request is at fault
                    raise RequestRefused(resp.status_code, server_message(body, text), replica.label)
            finally:
                replica.in_flight -= 1
            self._failed(replica, last)
            if attempt == self.max_retries:
                break
            delay = backoff_seconds(attempt, self.backoff_base, self.backoff_cap, self._rng)
            await asyncio.sleep(min(self.backoff_cap, wait) if wait is not None else delay)
        raise RequestFailed(f"{last} (after {self.max_retries + 1} attempts)")
