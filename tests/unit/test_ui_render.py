"""assistant.ui.render (the UI's HTML, built from escaped text only) and assistant.ui's exposure check,
on hand-made answers, citations and articles.

The HTML is parsed as XML: every fragment must be well formed, so that what an article or a model
wrote can only ever be text inside it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from assistant.errors import ConfigError
from assistant.models import SPAN_GAP, Answer, Article, Citation, DocumentInfo, IndexStatus
from assistant.ui import check_exposure, is_loopback
from assistant.ui import render

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
ARTICLE_TEXT = "الفقرة الأولى عن التحالف.\nقال الناطق الرسمي العقيد مايلز كيغينز إن القوات تحركت.\nالفقرة الأخيرة."
PASSAGE = "قال الناطق الرسمي العقيد مايلز كيغينز إن القوات تحركت."
START = ARTICLE_TEXT.index(PASSAGE)
END = START + len(PASSAGE)


def parse(fragment: str) -> ET.Element:
    """The fragment under a <root>; fails when it is not well formed."""
    return ET.fromstring(f"<root>{fragment}</root>")


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def citation(n: int = 1, **fields) -> Citation:
    values = dict(
        n=n, doc_id="doc_a", title="عنوان المقال", chunk_id=f"doc_a:{n}:h", text=PASSAGE, start=START, end=END,
        score=0.9, source="عنب بلدي", date="2020-07-29",
    )
    return Citation(**(values | fields))


def answer(text: str, language: str = "ar", citations: list[Citation] | None = None, **fields) -> Answer:
    return Answer(text=text, language=language, citations=citations or [], model="embedded:test", **fields)


def article(**fields) -> Article:
    values = dict(doc_id="doc_a", title="عنوان المقال", text=ARTICLE_TEXT, source="عنب بلدي", date="2020-07-29")
    return Article(**(values | fields))


# --------------------------------------------------------------------------- escaping
def test_markup_in_answer_text_is_text():
    html = render.answer_text_html(answer(f"الجواب {HOSTILE} [1]", citations=[citation()]), turn=0)
    assert "<script" not in html and "<img" not in html
    root = parse(html)
    assert HOSTILE in text_of(root)
    assert [e.tag for e in root.iter()] == ["root", "a"]  # the citation link is the only element


def test_markup_in_titles_bylines_and_questions_is_text():
    hostile = citation(title=f"عنوان {HOSTILE}", source=f"<b>{HOSTILE}</b>", author=f"<u>{HOSTILE}</u>", date="<i>x</i>")
    turn = {"question": f"سؤال {HOSTILE}", "language": "ar", "answer": answer("جواب [1]", citations=[hostile]).model_dump(mode="json")}
    html = render.conversation_html([turn])
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    root = parse(html)
    assert {e.tag for e in root.iter()} <= {"root", "div", "a", "span", "ol", "li", "details", "summary", "ul", "textarea"}
    links = root.findall(".//a[@data-n]")
    assert links and all(link.get("title") == hostile.title for link in links)
    (markdown,) = root.iter("textarea")  # the answer's Markdown for "Copy with sources": text, never markup
    assert f"سؤال {HOSTILE}" in markdown.text and f"<b>{HOSTILE}</b>" in markdown.text
    assert f"سؤال {HOSTILE}" in text_of(root) and f"<b>{HOSTILE}</b> · <u>{HOSTILE}</u> · <i>x</i>" in text_of(root)


def test_the_byline_names_the_author_between_outlet_and_date_when_there_is_one():
    assert render.sources_html(answer("جواب [1]", citations=[citation(author="سلمى العلوي")]), 0).count("عنب بلدي · سلمى العلوي · 2020-07-29") == 1
    assert "عنب بلدي · 2020-07-29" in render.sources_html(answer("جواب [1]", citations=[citation()]), 0)
    viewer = render.article_html(article(author="سلمى العلوي"), citation(author="سلمى العلوي"))
    assert "عنب بلدي · سلمى العلوي · 2020-07-29" in text_of(parse(viewer))


def test_a_pdf_passage_says_its_page_in_the_sources_and_the_viewer():
    assert "عنب بلدي · 2020-07-29 · p. 2" in render.sources_html(answer("جواب [1]", citations=[citation(pages=[2])]), 0)
    assert "pp. 2–3" in render.sources_html(answer("جواب [1]", citations=[citation(pages=[2, 3])]), 0)
    (pages,) = [e for e in parse(render.article_html(article(), citation(pages=[2]))).iter("div") if e.get("class") == "cite-pages"]
    assert text_of(pages) == "p. 2"
    assert "cite-pages" not in render.article_html(article(), citation())  # a text article has no pages


def test_the_filters_a_question_was_asked_with_show_under_it_as_text():
    filters = {"sources": [f"<b>{HOSTILE}</b>", "Syria TV"], "since": "2020-07-01", "until": None}
    turn = {"question": "سؤال", "language": "ar", "filters": filters, "waiting": True}
    html = render.conversation_html([turn])
    assert "<b>" not in html and "<script" not in html and "<img" not in html
    (shown,) = [e for e in parse(html).iter("div") if e.get("class") == "filters"]
    assert text_of(shown) == f"{render.FILTERED['ar']} <b>{HOSTILE}</b>, Syria TV · 2020-07-01 – …"
    assert 'class="filters"' not in render.conversation_html([{**turn, "filters": None}])


def test_markup_in_article_text_title_and_question_is_text():
    text = f"{HOSTILE}\n{PASSAGE}\n{{{{value}}}} ${{1+1}}"
    start = text.index(PASSAGE)
    html = render.article_html(
        article(title=f"<h1>{HOSTILE}</h1>", text=text, source="<u>x</u>"),
        citation(start=start, end=start + len(PASSAGE)),
        question=f"سؤال {HOSTILE}",
    )
    assert "<script" not in html and "<img" not in html and "<h1>" not in html and "<u>" not in html
    root = parse(html)
    assert {e.tag for e in root.iter()} <= {"root", "article", "div", "h3", "mark", "span"}
    assert text_of(root.find(".//h3")) == f"<h1>{HOSTILE}</h1>"
    assert text_of(root.find(".//div[@class='article-body']")) == text


def test_streaming_partial_and_error_are_text():
    html = render.conversation_html([
        {"question": "q1", "language": "en", "partial": f"partial {HOSTILE}"},
        {"question": "q2", "language": "en", "error": f"error {HOSTILE}"},
    ])
    assert "<script" not in html and "<img" not in html
    streaming, error = [m for m in parse(html).iter("div") if "bot" in classes(m)]
    assert classes(streaming) == {"msg", "bot", "streaming"} and text_of(streaming) == f"partial {HOSTILE}"
    assert classes(error) == {"msg", "bot", "error"} and text_of(error) == f"error {HOSTILE}"


def test_status_and_library_rows_are_text():
    status = IndexStatus(documents=2, chunks=9, embedding_model="m<b>", store="/tmp/<i>", collection="c")
    root = parse(render.status_html(status, llm="<script>x</script>"))
    cells = {text_of(tr.find("th")): text_of(tr.find("td")) for tr in root.iter("tr")}
    assert cells["Language model"] == "<script>x</script>" and cells["Embedding model"] == "m<b>"
    docs = [DocumentInfo(doc_id="a", title="<b>t</b>", source="s", author="<i>w</i>", date="d", chunks=3)]
    assert render.library_rows(docs) == [["<b>t</b>", "a", "s", "<i>w</i>", "d", 3]]  # a Dataframe shows cells as text


# --------------------------------------------------------------------------- citation markers
def test_known_markers_become_links_and_unknown_ones_stay_text():
    cited = answer("أولا [1] ثم [2] وأخيرا [7] و[1, 2] و(3).", citations=[citation(1), citation(2)])
    root = parse(render.answer_text_html(cited, turn=4))
    links = root.findall("a")
    assert [(link.get("class"), link.get("data-turn"), link.get("data-n"), link.text) for link in links] == [
        ("cite", "4", "1", "[1]"),
        ("cite", "4", "2", "[2]"),
    ]
    assert text_of(root) == cited.text  # the text itself is unchanged, [7] included
    assert "[7]" in "".join([root.text or ""] + [link.tail or "" for link in links])


def test_sources_list_links_each_citation():
    cited = answer("جواب [1] [2]", citations=[citation(1), citation(2, title="", doc_id="doc_b")])
    root = parse(render.sources_html(cited, turn=2))
    links = root.findall(".//li/a")
    assert [(classes(a), a.get("data-turn"), a.get("data-n")) for a in links] == [
        ({"cite", "source-link"}, "2", "1"),
        ({"cite", "source-link"}, "2", "2"),
    ]
    titles = [text_of(span) for span in root.iter("span") if "source-title" in classes(span)]
    assert titles == ["عنوان المقال", "doc_b"]  # an untitled article shows its id
    assert text_of(root.find("div/div")) == "المصادر"
    assert render.sources_html(answer("Sources", language="en", citations=[citation()]), 0).count("Sources") == 1
    assert render.sources_html(answer("لا مصادر"), 0) == ""


# --------------------------------------------------------------------------- direction
@pytest.mark.parametrize(("language", "direction"), [("ar", "rtl"), ("en", "ltr")])
def test_each_message_has_the_direction_of_its_language(language, direction):
    question = "من هو المتحدث؟" if language == "ar" else "Who is the spokesman?"
    turn = {"question": question, "language": language, "answer": answer("x [1]", language=language, citations=[citation()]).model_dump(mode="json")}
    user, bot = parse(render.turn_html(turn, 0)).findall("div/div")
    assert (user.get("dir"), user.get("lang")) == (direction, language)
    assert (bot.get("dir"), bot.get("lang")) == (direction, language)
    assert classes(bot) == {"msg", "bot"}  # finished: no streaming class


def test_english_question_answered_in_arabic_keeps_each_direction():
    turn = {"question": "Who?", "language": "en", "answer": answer("مايلز كيغينز", language="ar").model_dump(mode="json")}
    user, bot = parse(render.turn_html(turn, 0)).findall("div/div")
    assert user.get("dir") == "ltr" and bot.get("dir") == "rtl"


def test_refusal_is_marked_as_a_refusal_not_an_error():
    turn = {"question": "What is the capital?", "language": "en", "answer": answer("No answer.", language="en", refused=True).model_dump(mode="json")}
    bot = parse(render.turn_html(turn, 0)).findall("div/div")[1]
    assert classes(bot) == {"msg", "bot", "refusal"}


def test_empty_conversation_shows_the_bilingual_hint():
    assert render.conversation_html([]) == render.EMPTY_CHAT
    hints = parse(render.EMPTY_CHAT).findall(".//p")
    assert {(p.get("dir"), p.get("lang")) for p in hints} == {("rtl", "ar"), ("ltr", "en")}


# --------------------------------------------------------------------------- the source viewer
def test_viewer_highlights_exactly_the_cited_slice():
    root = parse(render.article_html(article(), citation(), question="من هو؟"))
    body = root.find(".//div[@class='article-body']")
    mark = body.find("mark")
    assert mark.get("id") == "cited-passage"
    assert (body.text, mark.text, mark.tail) == (ARTICLE_TEXT[:START], ARTICLE_TEXT[START:END], ARTICLE_TEXT[END:])
    assert len(root.findall(".//mark")) == 1
    assert root.find("article").get("dir") == "rtl"
    assert text_of(root.find(".//h3")) == "عنوان المقال"
    assert "doc_a" in text_of(root.find(".//span[@class='doc-id']"))
    assert root.find(".//p[@class='notice']") is None


def test_viewer_marks_each_run_of_sentences_the_model_was_shown():
    """A compressed passage: two sentences of the article, not adjacent; the text between is not marked."""
    first, second = ARTICLE_TEXT.index("الفقرة الأولى"), ARTICLE_TEXT.index("الفقرة الأخيرة")
    spans = [(first, ARTICLE_TEXT.index("\n")), (second, len(ARTICLE_TEXT))]
    shown = SPAN_GAP.join(ARTICLE_TEXT[a:b] for a, b in spans)
    cited = citation(text=shown, start=spans[0][0], end=spans[-1][1], spans=spans)
    body = parse(render.article_html(article(), cited)).find(".//div[@class='article-body']")
    marks = body.findall("mark")
    assert [m.text for m in marks] == ["الفقرة الأولى عن التحالف.", "الفقرة الأخيرة."]
    assert marks[0].get("id") == "cited-passage" and marks[1].get("id") is None
    assert marks[0].tail == "\n" + PASSAGE + "\n"  # shown in the article, not marked
    alone = parse(render.article_html(None, cited)).find(".//div[@class='article-body']")
    assert [m.text for m in alone.findall("mark")] == ["الفقرة الأولى عن التحالف.", "الفقرة الأخيرة."]
    assert text_of(alone) == shown


@pytest.mark.parametrize(
    "current",
    [None, article(text=ARTICLE_TEXT.replace("مايلز", "مايلز  ")), article(text=ARTICLE_TEXT[:START])],
    ids=["removed", "edited", "shortened"],
)
def test_viewer_shows_the_passage_alone_when_the_article_is_gone_or_changed(current):
    root = parse(render.article_html(current, citation()))
    body = root.find(".//div[@class='article-body']")
    assert body.text is None and body.find("mark").text == PASSAGE and body.find("mark").tail is None
    assert root.find(".//p[@class='notice']") is not None
    assert text_of(root.find(".//h3")) == "عنوان المقال"


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,<script>x</script>", "vbscript:x", "file:///etc/passwd", "//evil.example/x"],
)
def test_only_http_urls_become_links(url):
    root = parse(render.article_html(article(url=url), citation()))
    assert root.findall(".//a") == []


def test_http_url_is_a_safe_link():
    url = 'https://example.com/a?b=1&c="2"'
    link = parse(render.article_html(article(url=url), citation())).find(".//a")
    assert link.get("href") == url
    assert link.get("target") == "_blank" and set(link.get("rel").split()) == {"noopener", "noreferrer"}


# --------------------------------------------------------------------------- exposure
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_need_no_login(settings_factory, host):
    assert is_loopback(host)
    check_exposure(settings_factory(ui={"host": host}))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "assistant.example.com"])
def test_other_hosts_need_a_login(settings_factory, host):
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="ASSISTANT_UI__USERNAME and ASSISTANT_UI__PASSWORD") as error:
        check_exposure(settings_factory(ui={"host": host}))
    assert host in str(error.value)
    for half in ({"username": "ana"}, {"password": "secret"}, {"username": "ana", "password": ""}):
        with pytest.raises(ConfigError):
            check_exposure(settings_factory(ui={"host": host, **half}))


def test_login_from_the_environment_allows_other_hosts_and_reaches_gradio(settings_factory, monkeypatch):
    monkeypatch.setenv("ASSISTANT_UI__USERNAME", "ana")
    monkeypatch.setenv("ASSISTANT_UI__PASSWORD", "s3cret")
    settings = settings_factory(ui={"host": "0.0.0.0"})
    check_exposure(settings)
    assert "s3cret" not in repr(settings.ui)  # the password is never printed

    from assistant.ui.app import mount_kwargs

    kwargs = mount_kwargs(settings)
    assert kwargs["auth"] == ("ana", "s3cret")
    assert kwargs["show_error"] is False  # errors reach the page as friendly messages only


def test_default_launch_is_loopback_without_login(settings_factory):
    from assistant.ui.app import mount_kwargs

    settings = settings_factory()
    kwargs = mount_kwargs(settings)
    assert (settings.ui.host, settings.ui.port, kwargs["auth"]) == ("127.0.0.1", 7860, None)
    assert kwargs["max_file_size"] == 10_000_000  # bytes: megabytes of 10^6, as in ingest


def test_compared_answers_are_side_by_side_with_their_own_citation_links_and_differing_numbers_marked():
    from assistant.by_source import BySource, Disagreement, SourceAnswer

    one = SourceAnswer(source="Enab Baladi", text="اعتقلت قسد 31 شخصا [1]", language="ar", citations=[citation(source="Enab Baladi")])
    two = SourceAnswer(source="<b>Syria TV</b>", text="اعتقلت قسد 30 شخصا [1]", language="ar", citations=[citation(source="Syria TV")])
    compared = BySource(question="كم شخصا اعتقلت قسد؟", answers=[one, two], disagreements=[
        Disagreement(value="30", sources=["<b>Syria TV</b>"], others=["Enab Baladi"]),
        Disagreement(value="31", sources=["Enab Baladi"], others=["<b>Syria TV</b>"]),
    ])
    html = render.conversation_html([{"question": compared.question, "language": "ar", "compared": compared.model_dump(mode="json")}])
    root = parse(html)
    columns = [e for e in root.iter("div") if "compared-answer" in (e.get("class") or "").split()]
    assert [text_of(c.find("div")) for c in columns] == ["Enab Baladi", "<b>Syria TV</b>"]  # markup shown as text
    links = [(a.get("data-answer"), a.get("data-n")) for a in root.iter("a") if "cite" in (a.get("class") or "")]
    assert ("0", "1") in links and ("1", "1") in links
    assert [text_of(m) for m in root.iter("mark")] == ["31", "30"]
    assert "Where they differ" in text_of(root)


def test_differing_names_are_marked_where_the_answer_writes_them():
    from assistant.by_source import BySource, Disagreement, SourceAnswer

    one = SourceAnswer(source="Enab Baladi", text="المتحدث هو مايلز كاغينز [1]، وقال كاغينز إن 3 قتلوا", language="ar",
                       citations=[citation(source="Enab Baladi")])
    two = SourceAnswer(source="Syria TV", text="المتحدث هو ريان ديلون [1]", language="ar", citations=[citation(source="Syria TV")])
    compared = BySource(question="من هو المتحدث؟", answers=[one, two], disagreements=[
        Disagreement(kind="name", value="مايلز كاغينز", sources=["Enab Baladi"], others=["Syria TV"]),
        Disagreement(kind="name", value="ريان ديلون", sources=["Syria TV"], others=["Enab Baladi"]),
    ])
    root = parse(render.conversation_html([{"question": compared.question, "language": "ar", "compared": compared.model_dump(mode="json")}]))
    # The whole name, once each; a figure that no disagreement names ("3") stays unmarked.
    assert [text_of(m) for m in root.iter("mark")] == ["مايلز كاغينز", "ريان ديلون"]
