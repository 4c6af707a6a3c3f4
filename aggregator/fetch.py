"""One HTTP exchange per call: conditional GET with hard limits, turned into a FetchResult.

Knows nothing of feeds or SQL. Every failure becomes a FetchError naming the source, so
the pipeline can record it and move on to the next source.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator

import requests

from . import USER_AGENT
from .models import FetchResult, Source

MAX_BODY = 16 * 1024 * 1024
DEADLINE = 30.0
MAX_REDIRECTS = 10
CHUNK = 64 * 1024
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)


class FetchError(Exception):
    """A fetch that produced no usable response; `source` is the source key."""

    def __init__(self, source: str, message: str, status: int | None = None) -> None:
        self.source = source
        self.status = status
        super().__init__(message)


class Fetcher:
    """Holds the shared `requests.Session` (connection pooling across all sources)."""

    def __init__(
        self,
        user_agent: str = USER_AGENT,
        max_body: int = MAX_BODY,
        deadline: float = DEADLINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = requests.Session()
        self.session.max_redirects = MAX_REDIRECTS
        adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.user_agent = user_agent
        self.max_body = max_body
        self.deadline = deadline
        self.clock = clock

    def close(self) -> None:
        self.session.close()

    def fetch(
        self,
        source: Source,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        headers = {"User-Agent": source.user_agent or self.user_agent, "Accept": ACCEPT}
        headers["Accept-Encoding"] = "gzip, deflate"
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        headers.update(dict(source.headers))
        deadline = min(self.deadline, source.timeout)
        start = self.clock()
        try:
            resp = self.session.get(
                source.url,
                headers=headers,
                timeout=(min(10.0, deadline), deadline),
                stream=True,
                allow_redirects=True,
            )
        except requests.TooManyRedirects:
            raise FetchError(source.key, f"more than {MAX_REDIRECTS} redirects (or a redirect loop)") from None
        except requests.exceptions.InvalidSchema as e:
            raise FetchError(source.key, f"redirected to an unsupported scheme: {e}") from None
        except requests.Timeout:
            raise FetchError(source.key, f"timed out after {deadline:g}s") from None
        except requests.ConnectionError as e:
            raise FetchError(source.key, f"connection failed: {_reason(e)}") from None
        except requests.RequestException as e:
            raise FetchError(source.key, f"request failed: {e}") from None
        with resp:
            status = resp.status_code
            if status == 304:
                return self._result(resp, None, start)
            if status >= 400:
                raise FetchError(source.key, f"HTTP {status} {resp.reason or ''}".strip(), status=status)
            body = self._read(source, resp, start, deadline)
            return self._result(resp, body, start)

    def _result(self, resp: requests.Response, body: bytes | None, start: float) -> FetchResult:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return FetchResult(
            url=resp.url,
            status=resp.status_code,
            body=body,
            headers=headers,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            elapsed=self.clock() - start,
        )

    def _read(self, source: Source, resp: requests.Response, start: float, deadline: float) -> bytes:
        """Read the body within the deadline and the size cap, decompressing ourselves.

        urllib3's own decoding would let a small gzip bomb inflate without bound before we
        could count, so the raw stream is read and inflated here with a running limit.
        """
        length = resp.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            raise FetchError(source.key, f"body too large: {int(length)} bytes (limit {self.max_body})")
        encoding = resp.headers.get("content-encoding", "").strip().lower()
        decoder = _decoder(encoding)
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in _raw_chunks(resp):
                if self.clock() - start > deadline:
                    raise FetchError(source.key, f"deadline of {deadline:g}s exceeded while reading the body")
                for data in decoder(chunk) if decoder else (chunk,):
                    size += len(data)
                    if size > self.max_body:
                        raise FetchError(source.key, f"body too large: over {self.max_body} bytes")
                    parts.append(data)
        except requests.RequestException as e:
            raise FetchError(source.key, f"connection broken while reading the body: {_reason(e)}") from None
        except zlib.error as e:
            raise FetchError(source.key, f"corrupt {encoding} body: {e}") from None
        return b"".join(parts)


def _raw_chunks(resp: requests.Response) -> Iterator[bytes]:
    import urllib3

    try:
        yield from resp.raw.stream(CHUNK, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise requests.ConnectionError(e) from None


def _decoder(encoding: str) -> Callable[[bytes], Iterator[bytes]] | None:
    if encoding in ("gzip", "x-gzip"):
        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header; raw deflate below
    else:
        return None
    state = {"first": True}

    def decode(chunk: bytes) -> Iterator[bytes]:
        nonlocal z
        if state["first"] and encoding == "deflate" and chunk[:1] not in (b"\x78", b"\x1f"):
            z = zlib.decompressobj(-zlib.MAX_WBITS)  # some servers send raw deflate
        state["first"] = False
        # max_length bounds each step, so a bomb is counted before it can allocate much
        yield z.decompress(chunk, CHUNK * 4)
        while z.unconsumed_tail:
            yield z.decompress(z.unconsumed_tail, CHUNK * 4)

    return decode


def _reason(e: Exception) -> str:
    text = str(e)
    for marker in ("Connection refused", "Name or service not known", "Connection reset", "timed out"):
        if marker in text:
            return marker
    return text[:200]
