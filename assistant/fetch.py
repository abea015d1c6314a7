"""Stage 1, read, from the web: article pages and RSS/Atom feeds by URL → Articles.

A feed (``feedparser``: RSS 2.0, Atom) is read for its entries' links, and each page is fetched and
read like an HTML file (``read.html_article``); the entry's title and date stand in where the page
has none, and the feed's title where the page names no outlet. Fetching is polite and safe:
http(s) only, a timeout for the whole response, a size cap (``ingest.max_file_mb``), the
``User-Agent`` of ``ingest.user_agent``, each site's ``robots.txt`` obeyed, redirects followed
only to where a first request could go, and no request to a loopback, private, link-local or
reserved address unless ``ingest.allow_private_hosts`` is set: each request connects to the
address that was checked, never to a second lookup of the name. Every URL that fails is reported
with the reason; the others are still read.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from assistant.config import IngestSettings, megabytes
from assistant.errors import InputError
from assistant.models import Article
from assistant.read import Opened, Skipped, UnreadableFile, decode, html_article

MAX_REDIRECTS = 5
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml")


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str | Path) -> bool:
    """Whether an ingest argument names a URL (any ``scheme://``) rather than a path."""
    return isinstance(text, str) and bool(_SCHEME.match(text))


class FetchError(Exception):
    """Why one URL could not be read, in words for the ingest report."""


@dataclass
class Page:
    url: str  # after redirects
    content: bytes
    content_type: str
    validators: dict[str, str] = field(default_factory=dict)  # ETag and Last-Modified, to ask again cheaply
    not_modified: bool = False  # 304: unchanged since the validators sent


@dataclass
class FollowState:
    """What ``assistant ingest --follow`` remembers between runs (a JSON file): each feed's
    validators, for a conditional GET, and the entry links already read with the doc id each
    became, so that a page already indexed is not fetched again."""

    path: Path
    collection_id: str  # a rebuilt index starts over: its articles are gone
    validators: dict[str, dict[str, str]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, collection_id: str) -> "FollowState":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, collection_id)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the follow state {path} ({exc}); delete it to read every feed again") from None
        if data.get("collection_id") != collection_id:
            return cls(path, collection_id)
        return cls(path, collection_id, dict(data.get("validators", {})), dict(data.get("links", {})))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = {"collection_id": self.collection_id, "validators": self.validators, "links": self.links}
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)  # whole or not at all


def read_url_list(path: str | Path) -> list[str]:
    """The URLs of a ``--follow`` file: one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list of feeds {path} ({exc})") from None
    urls = [line.split("#", 1)[0].strip() for line in lines]
    urls = [u for u in urls if u]
    bad = [u for u in urls if not is_url(u)]
    if bad or not urls:
        raise InputError(f"{path}: expected one http(s) URL per line" + (f", not {bad[0]!r}" if bad else ", found none"))
    return urls


def doc_id_for(url: str) -> str:
    """A stable doc id for an article found at ``url``: its host and a hash of the URL."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'web'}-{hashlib.sha1(url.encode('utf-8')).hexdigest()[:12]}"


@dataclass
class Fetcher:
    settings: IngestSettings
    _robots: dict[str, RobotFileParser] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            headers={"User-Agent": self.settings.user_agent}, follow_redirects=False, timeout=self.settings.fetch_timeout_s
        )

    def close(self) -> None:
        self.client.close()

    # --- one URL -------------------------------------------------------------------------------
    def get(self, url: str, check_robots: bool = True, validators: dict[str, str] | None = None) -> Page:
        """The response body at ``url`` (redirects followed, each hop checked). With the
        ``validators`` of an earlier response, a conditional GET. Raises FetchError."""
        conditional = {}
        if validators:
            conditional = {k: v for k, v in (("If-None-Match", validators.get("etag")), ("If-Modified-Since", validators.get("last-modified"))) if v}
        for _ in range(MAX_REDIRECTS + 1):
            address = self._check_address(url)
            if check_robots and not self._allowed(url):
                raise FetchError("disallowed by the site's robots.txt")
            status, headers, content = self._request(url, conditional, address)
            if status in (301, 302, 303, 307, 308) and headers.get("location"):
                url = urljoin(url, headers["location"])
                continue
            kept = {k: headers[k] for k in ("etag", "last-modified") if headers.get(k)}
            if status == 304 and conditional:
                return Page(url, b"", "", validators or {}, not_modified=True)
            if status >= 400 or status == 304:
                raise FetchError(f"HTTP {status}")
            return Page(url, content, headers.get("content-type", "").split(";")[0].strip().lower(), kept)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict[str, str] | None = None, address: str | None = None) -> tuple[int, httpx.Headers, bytes]:
        """GET ``url``; with ``address``, connect to that address (the one checked) instead of
        resolving the host name again, which a DNS server could answer differently the second time
        (DNS rebinding). The request still names the host (``Host``, and TLS's SNI and certificate
        check), so the server sees the same request."""
        limit = megabytes(self.settings.max_file_mb)
        deadline = time.monotonic() + self.settings.fetch_timeout_s
        target, headers, extensions = _pinned(url, address, headers or {})
        try:
            with self.client.stream("GET", target, headers=headers, extensions=extensions) as response:
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"the page is {int(declared) / 1e6:.3g} MB, over ingest.max_file_mb ({limit / 1e6:.3g} MB)")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise FetchError(f"the page is over ingest.max_file_mb ({limit / 1e6:.3g} MB)")
                    if time.monotonic() > deadline:  # a server trickling bytes never times out per read
                        raise httpx.ReadTimeout("deadline")
                return response.status_code, response.headers, bytes(body)
        except httpx.TimeoutException:
            raise FetchError(f"no complete answer within {self.settings.fetch_timeout_s:g} s (ingest.fetch_timeout_s)") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot connect ({exc.__class__.__name__}: {exc})") from None
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError(f"not a valid URL ({exc})") from None

    def _check_address(self, url: str) -> str | None:
        """Check that ``url`` may be fetched; returns the address its host resolved to, which the
        request must connect to (None when ``ingest.allow_private_hosts`` lets any address in)."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError as exc:
            raise FetchError(f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"only http and https URLs are fetched, not {parts.scheme}://")
        if not parts.hostname:
            raise FetchError("the URL names no host")
        if self.settings.allow_private_hosts:
            return None
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {parts.hostname} ({getattr(exc, 'strerror', None) or exc})") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if not address.is_global:
                raise FetchError(
                    f"{parts.hostname} is a local or private address ({address}); set ingest.allow_private_hosts to fetch from it"
                )
        return infos[0][4][0]

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        robots = self._robots.get(origin)
        if robots is None:
            robots = RobotFileParser(origin + "/robots.txt")
            try:
                page = self.get(origin + "/robots.txt", check_robots=False)
                robots.parse(decode(page.content).splitlines())
            except FetchError as exc:
                # As robotparser does: no robots.txt (4xx) allows everything, 401/403 nothing.
                robots.disallow_all = str(exc) in ("HTTP 401", "HTTP 403")
                robots.allow_all = not robots.disallow_all
            except UnreadableFile:
                robots.allow_all = True
            self._robots[origin] = robots
        return robots.can_fetch(self.settings.user_agent, url)


def _pinned(url: str, address: str | None, headers: dict[str, str]) -> tuple[str, dict[str, str], dict]:
    """(the URL to request, its headers, httpx extensions) so that the connection goes to
    ``address`` while the request names the URL's host."""
    if address is None:
        return url, headers, {}
    named = httpx.URL(url)
    ip = address.split("%")[0]
    target = named.copy_with(host=ip)  # httpx brackets an IPv6 address itself
    extensions = {"sni_hostname": named.raw_host.decode("ascii")} if named.scheme == "https" else {}
    return str(target), {**headers, "Host": named.netloc.decode("ascii")}, extensions


def is_feed(page: Page) -> bool:
    if page.content_type in _FEED_TYPES:
        return True
    head = page.content[:512].lstrip().lower()
    return head.startswith((b"<?xml", b"<rss", b"<feed", b"<rdf")) and b"<html" not in head


def read_urls(
    urls: list[str], settings: IngestSettings, follow: FollowState | None = None
) -> Iterator[Opened | Article | Skipped]:
    """Articles from each URL (a page, or every entry of a feed), and a Skipped for each URL that
    could not be read; ``Opened(url)`` marks each page fetched. With ``follow``, a feed unchanged
    since the last run (HTTP 304) is not read again, nor a page already read from a feed."""
    fetcher = Fetcher(settings)
    try:
        for url in urls:
            try:
                page = fetcher.get(url, validators=follow.validators.get(url) if follow else None)
            except FetchError as exc:
                yield Skipped(url, str(exc))
                continue
            if page.not_modified:
                yield Skipped(url, "not modified since the last run", error=False)
                continue
            whole = True
            if is_feed(page):
                whole = yield from _feed_articles(fetcher, page, follow)
            else:
                yield from _page_article(page)
            # A feed with an entry that failed is asked for whole again next time, to retry it.
            if follow is not None and page.validators and whole:
                follow.validators[url] = page.validators
    finally:
        fetcher.close()


def _page_article(page: Page, fallback: Article | None = None) -> Iterator[Opened | Article | Skipped]:
    try:
        text = decode(page.content)
    except UnreadableFile as exc:
        yield Skipped(page.url, str(exc))
        return
    yield Opened(page.url)
    article = html_article(text, page.url)
    if fallback is not None:  # what the feed says, where the page says nothing
        article = article.model_copy(
            update={k: getattr(fallback, k) for k in ("title", "date", "source") if not getattr(article, k) and getattr(fallback, k)}
        )
    if not article.text.strip():
        yield Skipped(page.url, "no article text in the page")
        return
    host = (urlsplit(page.url).hostname or "").removeprefix("www.")
    yield article.model_copy(
        update={"doc_id": doc_id_for(article.url or page.url), "path": page.url, "source": article.source or host}
    )


def _feed_articles(fetcher: Fetcher, page: Page, follow: FollowState | None = None) -> Generator[Opened | Article | Skipped, None, bool]:
    """The feed's entries' articles; returns whether every entry was read."""
    import feedparser

    feed = feedparser.parse(page.content)
    if feed.bozo and not feed.entries:
        yield Skipped(page.url, f"not a readable RSS or Atom feed ({feed.bozo_exception})")
        return False
    whole = True
    outlet = (feed.feed.get("title") or "").strip()
    for entry in feed.entries:
        link = entry.get("link")
        if not link:
            yield Skipped(page.url, f"a feed entry without a link ({entry.get('title', '')!r})", error=False)
            continue
        link = urljoin(page.url, link)
        if follow is not None and link in follow.links:
            continue  # read on an earlier run (its doc id is in follow.links)
        hint = Article(
            doc_id="",
            text="",
            title=(entry.get("title") or "").strip(),
            date=entry.get("published") or entry.get("updated") or "",
            source=outlet,
        )
        try:
            article_page = fetcher.get(link)
        except FetchError as exc:
            yield Skipped(link, str(exc))
            whole = False
            continue
        for item in _page_article(article_page, hint):
            if follow is not None and isinstance(item, Article):
                follow.links[link] = item.doc_id
            whole = whole and not (isinstance(item, Skipped) and item.error)
            yield item
    return whole
