"""Pages and feeds by URL, from an HTTP server on loopback that this test starts: RSS and Atom feeds,
Arabic article pages with and without page metadata, a 404, a page that never answers, an oversize
page and a robots.txt that disallows one path. Real Chroma and the real embedder."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.fetch import doc_id_for
from tests.conftest import write_config

from .helpers import run_cli

pytestmark = pytest.mark.slow

PAGES = Path(__file__).parent.parent / "fixtures" / "html"
TIMEOUT_S = 2.0
MAX_MB = 0.2

BARE_PAGE = """<!DOCTYPE html><html lang="ar"><head><meta charset="utf-8"></head><body>
<div class="nav"><a href="/">الرئيسية</a></div>
<article><p>أعلنت مديرية التربية في مدينة الحسكة عن افتتاح ثلاث مدارس جديدة في ريف المدينة الشمالي مع بداية العام الدراسي المقبل.</p>
<p>وقال مدير التربية إن المدارس الجديدة تتسع لأكثر من ألف وخمسمئة طالب وطالبة من أبناء القرى المحيطة بالمدينة.</p></article>
</body></html>"""


ITEMS = {
    "/news/coalition.html": "<title>التحالف الدولي يعلن تحركه نحو دير الزور</title><pubDate>Wed, 29 Jul 2020 10:15:00 +0300</pubDate>",
    "/news/schools.html": "<title>مدارس جديدة في ريف الحسكة</title><pubDate>Mon, 14 Sep 2020 08:00:00 +0300</pubDate>",
    "/news/gone.html": "<title>خبر محذوف</title>",
    "/news/slow.html": "<title>صفحة بطيئة</title>",
    "/culture/museum.html": "<title>افتتاح متحف الخط العربي في تطوان</title>",
}


def rss(base: str, paths: list[str] = ["/news/coalition.html", "/news/schools.html", "/news/gone.html", "/news/slow.html"]) -> str:
    items = "".join(f"<item>{ITEMS[p]}<link>{base}{p}</link></item>\n" for p in paths)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>نشرة الشمال</title><link>{base}/</link><description>أخبار</description>
{items}</channel></rss>"""


def atom(base: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>تطوان اليوم</title><id>{base}/atom</id><updated>2021-03-16T00:00:00Z</updated>
<entry><title>افتتاح متحف الخط العربي في تطوان</title><link href="{base}/culture/museum.html"/><id>m1</id>
  <updated>2021-03-16T00:00:00Z</updated></entry>
<entry><title>خبر خاص</title><link href="{base}/private/secret.html"/><id>m2</id><updated>2021-03-16T00:00:00Z</updated></entry>
<entry><title>صفحة ضخمة</title><link href="{base}/big.html"/><id>m3</id><updated>2021-03-16T00:00:00Z</updated></entry>
</feed>"""


class Site:
    """The test's web server: routes, and every path requested, in order."""

    def __init__(self):
        self.requests: list[str] = []
        self.hosts: list[str | None] = []  # the Host header of each request
        self.redirects: dict[str, str] = {}  # path -> where it redirects
        self.conditional: list[tuple[str, str | None]] = []  # (path, If-None-Match sent)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                site.requests.append(self.path)
                site.hosts.append(self.headers.get("Host"))
                if self.path in site.redirects:
                    self.send_response(302)
                    self.send_header("Location", site.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route = site.routes().get(self.path)
                if self.path == "/news/slow.html":
                    time.sleep(TIMEOUT_S * 3)  # never answers in time
                    route = ("text/html", BARE_PAGE)
                if route is None:
                    self.send_error(404)
                    return
                kind, body = route
                data = body.encode("utf-8") if isinstance(body, str) else body
                etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
                site.conditional.append((self.path, self.headers.get("If-None-Match")))
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Wed, 29 Jul 2020 10:15:00 GMT")
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def routes(self) -> dict[str, tuple[str, str | bytes]]:
        return {
            "/robots.txt": ("text/plain", "User-agent: *\nDisallow: /private/\n"),
            "/feed.xml": ("application/rss+xml", rss(self.base)),
            "/atom.xml": ("application/atom+xml", atom(self.base)),
            "/good.xml": ("application/rss+xml", rss(self.base, ["/news/coalition.html", "/culture/museum.html"])),
            "/mixed.xml": ("application/rss+xml", rss(self.base, ["/news/schools.html", "/news/gone.html"])),
            "/news/coalition.html": ("text/html", (PAGES / "enab_og.html").read_text(encoding="utf-8")),
            "/news/schools.html": ("text/html", BARE_PAGE),
            "/culture/museum.html": ("text/html", (PAGES / "jsonld_only.html").read_text(encoding="utf-8")),
            "/private/secret.html": ("text/html", BARE_PAGE),
            "/big.html": ("text/html", "<p>" + "كلمة " * 60_000 + "</p>"),
        }

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site():
    server = Site()
    yield server
    server.close()


def make_assistant(root: Path, allow_private: bool = True) -> Assistant:
    ingest = {"fetch_timeout_s": TIMEOUT_S, "max_file_mb": MAX_MB, "allow_private_hosts": allow_private}
    return Assistant(load_settings(write_config(root, ingest=ingest, llm={"provider": "extractive"})))


def test_feeds_are_ingested_with_titles_outlets_and_dates_and_failures_reported_per_url(site, tmp_path):
    assistant = make_assistant(tmp_path)
    report = assistant.ingest([f"{site.base}/feed.xml", f"{site.base}/atom.xml"])

    coalition = doc_id_for("https://www.enabbaladi.net/archives/405123")  # the page's canonical URL
    schools = doc_id_for(f"{site.base}/news/schools.html")
    museum = doc_id_for(f"{site.base}/culture/museum.html")
    assert sorted(report.added) == sorted([coalition, schools, museum]), report
    docs = {d.doc_id: d for d in assistant.documents()}
    # The page's own metadata, where it has it; the feed's title, date and name where it has not.
    assert (docs[coalition].title, docs[coalition].source, docs[coalition].date) == (
        "التحالف الدولي يعلن تحركه نحو دير الزور", "عنب بلدي", "2020-07-29"
    )
    assert (docs[schools].title, docs[schools].source, docs[schools].date) == ("مدارس جديدة في ريف الحسكة", "نشرة الشمال", "2020-09-14")
    assert (docs[museum].title, docs[museum].source, docs[museum].date) == ("افتتاح متحف الخط العربي في تطوان", "تطوان اليوم", "2021-03-15")
    assert "البرقوقي" in assistant.article(museum).text

    failures = {s.path: s.reason for s in report.errors}
    assert failures == {
        f"{site.base}/news/gone.html": "HTTP 404",
        f"{site.base}/news/slow.html": f"no complete answer within {TIMEOUT_S:g} s (ingest.fetch_timeout_s)",
        f"{site.base}/private/secret.html": "disallowed by the site's robots.txt",
        f"{site.base}/big.html": f"the page is {len(site.routes()['/big.html'][1].encode()) / 1e6:.3g} MB, over ingest.max_file_mb ({MAX_MB:g} MB)",
    }
    assert "/private/secret.html" not in site.requests  # robots.txt is read first, and obeyed

    again = assistant.ingest([f"{site.base}/feed.xml", f"{site.base}/atom.xml"])
    assert again.added == [] and again.replaced == []
    assert sorted(again.unchanged) == sorted([coalition, schools, museum])


def test_one_page_by_url_from_the_command_line(site, tmp_path):
    make_assistant(tmp_path)  # writes the config
    result = run_cli(tmp_path, "ingest", f"{site.base}/news/schools.html")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Added 1, updated 0, unchanged 0")
    found = run_cli(tmp_path, "search", "كم طالباً تتسع المدارس الجديدة في الحسكة؟", "--json")
    assert doc_id_for(f"{site.base}/news/schools.html") in found.stdout


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("{base}/news/schools.html", "127.0.0.1 is a local or private address (127.0.0.1); set ingest.allow_private_hosts to fetch from it"),
        ("http://localhost:9/x.html", "localhost is a local or private address"),
        ("http://10.1.2.3/x.html", "10.1.2.3 is a local or private address (10.1.2.3)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a local or private address"),
        ("ftp://example.com/feed.xml", "only http and https URLs are fetched, not ftp://"),
        ("http://[::1/feed.xml", "not a valid URL (Invalid IPv6 URL)"),
        ("http://example.com:port/feed.xml", "not a valid URL (Port could not be cast to integer value as 'port')"),
    ],
)
def test_local_addresses_and_other_schemes_are_refused_by_default(site, tmp_path, url, reason):
    assistant = make_assistant(tmp_path, allow_private=False)
    before = len(site.requests)
    report = assistant.ingest([url.format(base=site.base)])
    assert report.added == []
    (error,) = report.errors
    assert error.reason.startswith(reason), error.reason
    assert len(site.requests) == before  # nothing was asked of the server


class Recorder:
    """An HTTP server on ``host``:``port`` that answers 200 to anything and records the paths asked:
    the internal service a rebinding attack would reach."""

    def __init__(self, host: str, port: int):
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                recorder.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(BARE_PAGE.encode("utf-8"))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_name_that_resolves_elsewhere_the_second_time_is_fetched_from_the_address_checked(site, tmp_path, monkeypatch):
    """DNS rebinding: the first lookup of a name gives a public address, which passes the check;
    every later lookup gives an internal one. The fetch must connect to the address it checked,
    on redirects too, and never reach the internal server that listens on the same port."""
    import socket

    port = int(site.base.rsplit(":", 1)[1])
    internal = Recorder("127.0.0.3", port)  # loopback, like a service on the host's private network
    # Global addresses, which the network routes to the test's site.
    public = {"news.test": "93.184.216.34", "hop.test": "93.184.216.35", "other.test": "93.184.216.36"}
    looked_up: dict[str, int] = {}
    real = socket.getaddrinfo

    def rebinding(host, port_, *args, **kwargs):
        if host in public:
            looked_up[host] = looked_up.get(host, 0) + 1
            answer = public[host] if looked_up[host] == 1 else "127.0.0.3"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port_))]
        if host in public.values():  # the network delivers the public addresses to the test's site
            return real("127.0.0.1", port_, *args, **kwargs)
        return real(host, port_, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    site.redirects["/hop"] = f"http://other.test:{port}/news/schools.html"
    try:
        assistant = make_assistant(tmp_path, allow_private=False)
        start = len(site.requests)
        report = assistant.ingest([f"http://news.test:{port}/news/coalition.html", f"http://hop.test:{port}/hop"])
    finally:
        del site.redirects["/hop"]
        internal.close()
    assert internal.requests == [], "a second lookup of the name was used to connect"
    # One lookup for the page and one for its robots.txt (refused: that one is internal), per name.
    assert looked_up == {"news.test": 2, "hop.test": 2, "other.test": 2}, looked_up
    assert site.requests[start:] == ["/news/coalition.html", "/hop", "/news/schools.html"]
    assert site.hosts[start:] == [f"news.test:{port}", f"hop.test:{port}", f"other.test:{port}"]  # the server sees the name
    assert len(report.added) == 2, report


def test_following_feeds_asks_again_only_for_what_changed(site, tmp_path):
    """``--follow``: the second run sends each feed's ETag; an unchanged feed answers 304 and none of
    its pages is fetched; a feed with an entry that failed is read again, and only the failed
    page is asked for again."""
    make_assistant(tmp_path)
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"# the outlets I follow\n{site.base}/good.xml\n\n{site.base}/mixed.xml  # north\n", encoding="utf-8")
    first = run_cli(tmp_path, "ingest", "--follow", feeds.name, "--json")
    assert first.returncode == 1, first.stderr  # the 404 is an error
    report = json.loads(first.stdout)
    assert len(report["added"]) == 3
    assert [(s["path"], s["reason"]) for s in report["skipped"]] == [(f"{site.base}/news/gone.html", "HTTP 404")]

    site.requests.clear()
    site.conditional.clear()
    second = run_cli(tmp_path, "ingest", "--follow", feeds.name, "--json")
    report = json.loads(second.stdout)
    assert (report["added"], report["replaced"]) == ([], [])
    assert [(s["path"], s["reason"], s["error"]) for s in report["skipped"]] == [
        (f"{site.base}/good.xml", "not modified since the last run", False),
        (f"{site.base}/news/gone.html", "HTTP 404", True),
    ]
    asked = dict(site.conditional)
    assert asked["/good.xml"] is not None  # its ETag was sent, and it answered 304
    assert asked["/mixed.xml"] is None  # read whole again: one of its entries had failed
    assert [p for p in site.requests if p != "/robots.txt"] == ["/good.xml", "/mixed.xml", "/news/gone.html"]


def test_a_follow_file_that_is_not_a_list_of_urls_is_one_clear_error(tmp_path):
    make_assistant(tmp_path)
    (tmp_path / "feeds.txt").write_text("feeds/local.xml\n", encoding="utf-8")
    result = run_cli(tmp_path, "ingest", "--follow", "feeds.txt")
    assert result.returncode == 1
    assert "feeds.txt: expected one http(s) URL per line, not 'feeds/local.xml'" in result.stderr


def test_the_library_tab_adds_pages_and_feeds_by_url(site, tmp_path):
    from assistant.ui.app import ChatUI

    ui = ChatUI(make_assistant(tmp_path))
    _status, rows, _choices, message, outlets, _timeline_outlets = ui.add_urls(f"  {site.base}/mixed.xml\n{site.base}/culture/museum.html ")
    assert message.startswith("Added 2, updated 0, unchanged 0"), message
    assert f"Skipped {site.base}/news/gone.html: HTTP 404" in message
    assert {(row[0], row[2]) for row in rows} == {("مدارس جديدة في ريف الحسكة", "نشرة الشمال"), ("افتتاح متحف الخط العربي في تطوان", "تطوان اليوم")}
    assert outlets["choices"] == ["تطوان اليوم", "نشرة الشمال"]
    *_, message, _, _ = ui.add_urls("feeds/local.xml")
    assert message == "Not a URL: feeds/local.xml (write it with http:// or https://)."
