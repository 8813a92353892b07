"""A polite HTTP client for arXiv (OAI-PMH and the API).

Why one place: arXiv asks for one request every few seconds, sends ``503`` with
``Retry-After`` when busy, and times out now and then. Every request here

* waits at least ``settings.arxiv_delay`` seconds after the previous one (``sleep`` is
  injectable so tests never wait, and record what was asked for),
* retries timeouts, transport errors (including truncated bodies), 5xx and 429 up to
  ``settings.arxiv_retries`` times: ``Retry-After`` when the server sends it, else
  exponential backoff,
* lets the caller reject a 200 whose body is unusable (``check`` raises
  :class:`RetryableBody`), which is retried the same way; when the last attempt is
  still unusable that response is returned, so the caller can salvage what it holds,
* raises :class:`indexer.errors.UpstreamError` when all attempts fail,
* gives each response at most ``settings.arxiv_read_deadline`` seconds in all (httpx's
  timeout is per read: a server sending a byte every few seconds never trips it); a
  slower response is retried like a timeout,
* with ``deadline_s``, stops the whole run at that deadline (waits and reads included)
  with :class:`indexer.errors.HarvestDeadline`; the caller has stored its progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from indexer.errors import HarvestDeadline, UpstreamError
from indexer.settings import Settings

log = logging.getLogger(__name__)

USER_AGENT = "papers/0.1 (arXiv search service; polite harvester)"
MAX_WAIT = 600.0  # never obey a Retry-After longer than this


class RetryableBody(Exception):
    """Raised by a ``check`` callback: the body is broken (e.g. truncated XML); retry."""


class _TooSlow(Exception):
    """A response took longer than its read deadline."""


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


class PoliteClient:
    """GETs with politeness delay and retries; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline_s: float | None = None,
    ):
        self.delay = float(settings.arxiv_delay)
        self.retries = int(settings.arxiv_retries)
        self.read_deadline = float(settings.arxiv_read_deadline)
        self.sleep = sleep
        self.clock = clock
        self.deadline_s = deadline_s or None
        self.deadline = clock() + deadline_s if deadline_s else None
        self._own = client is None
        self.client = client or httpx.Client(
            timeout=settings.arxiv_timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=True
        )
        self._last: float | None = None
        self.requests = 0
        self.retried = 0

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.client.close()

    def _wait_turn(self) -> None:
        if self._last is not None and self.delay > 0:
            wait = self.delay - (self.clock() - self._last)
            if wait > 0:
                self._pause(wait)

    def _left(self) -> float:
        """Seconds left before the run's deadline (infinite without one)."""
        return float("inf") if self.deadline is None else self.deadline - self.clock()

    def _stop(self) -> HarvestDeadline:
        return HarvestDeadline(
            f"the harvest stopped at its deadline of {self.deadline_s:.0f} s (PAPERS_HARVEST_DEADLINE); "
            "its progress is stored and the next run continues from there"
        )

    def _pause(self, seconds: float) -> None:
        if seconds >= self._left():
            raise self._stop()
        self.sleep(seconds)

    def _fetch(self, url: str, params: dict[str, Any]) -> httpx.Response:
        """One GET, read in full within the read deadline (and the run's deadline)."""
        limit = min(self.read_deadline, self._left())
        if limit <= 0:
            raise self._stop()
        start = self.clock()
        with self.client.stream("GET", url, params=params) as r:
            chunks = []
            for chunk in r.iter_bytes():
                chunks.append(chunk)
                if self.clock() - start > limit:
                    raise _TooSlow(f"response still arriving after {limit:.0f} s")
            # the body is decoded already: drop the headers that describe its encoded form
            headers = [(k, v) for k, v in r.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
            return httpx.Response(r.status_code, headers=headers, content=b"".join(chunks), request=r.request)

    def _backoff(self, attempt: int) -> float:
        return min(MAX_WAIT, max(self.delay, 1.0) * (2**attempt))

    def get(
        self, url: str, params: dict[str, Any], *, check: Callable[[httpx.Response], None] | None = None
    ) -> httpx.Response:
        """GET ``url``; returns the first acceptable response with status < 500 (not 429)."""
        problem = ""
        unusable: httpx.Response | None = None
        for attempt in range(self.retries + 1):
            if attempt == 0:  # a retry's pause is already >= the delay
                self._wait_turn()
            self.requests += 1
            wait: float | None = None
            try:
                resp = self._fetch(url, params)
            except _TooSlow as e:
                if self._left() <= 0:
                    raise self._stop() from None
                problem = f"too slow ({e})"
            except httpx.TimeoutException as e:
                problem = f"timeout ({type(e).__name__})"
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code >= 500 or resp.status_code == 429:
                    problem = f"HTTP {resp.status_code}"
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
                else:
                    try:
                        if check is not None and resp.status_code == 200:
                            check(resp)
                        return resp
                    except RetryableBody as e:
                        problem = f"unusable body: {e}"
                        unusable = resp
            finally:
                self._last = self.clock()
            if attempt == self.retries:
                if unusable is not None and problem.startswith("unusable body"):
                    return unusable  # the caller salvages what it can from it
                break
            self.retried += 1
            pause = min(MAX_WAIT, max(wait, self.delay)) if wait is not None else self._backoff(attempt)
            log.warning("arXiv request failed (%s); retry %d/%d in %.0fs", problem, attempt + 1, self.retries, pause)
            self._pause(pause)
        raise UpstreamError(f"{url} failed after {self.retries + 1} attempts: {problem}")
