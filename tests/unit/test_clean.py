"""assistant.clean: site furniture dropped, duplicates removed, title settled (real seeds + synthetic)."""

from __future__ import annotations

import pytest

from assistant.clean import clean_article
from assistant.config import CleaningSettings
from assistant.models import Article

PREFIXES = ["000", "001", "002", "003", "004"]

FURNITURE = [
    "الأكثر قراءة",
    "مقالات متعلقة",
    "ادعم عنب بلدي",
    "اضغط هنا للمساهمة",
    "دولار واحد شهريًا",
    "لم تشترك بعد",
    "انشئ حساباً خاصاً",
    "logo",
    "www.",
    "http",
    "twitter.com",
    "eremnews",
    "ع ع ع",
    "No stories found",
]

# A distinctive phrase from the first and from the last substantive paragraph of every seed.
SUBSTANCE = {
    "000": ["أعلن التحالف الدولي بقيادة الولايات المتحدة", "مايلز كيغينز", "ويغيب التاريخ العربي والإسلامي."],
    "001": ["تواصل قوات التحالف الدولي تقديم دعمها", "كاغينز", "والمتحدث السابق باسمه “أبو حسن المهاجر”"],
    "002": ["كشف التحالف الدولي لمحاربة تنظيم داعش", "بلدة الباغوز", "وإعلان القضاء على التنظيم في سوريا."],
    "003": ["تعهد التحالف الدولي ضد «داعش»", "كينو كبرييل", "عقب هجومها الأخير على مناطق شرق الفرات"],
    "004": ["أنهت عمليات التحالف الدولي", "- مكافحة بقايا داعش", "قاعدة الجزرة العسكرية"],
}


def _clean(text: str, title: str = "", **rules) -> Article:
    return clean_article(Article(doc_id="x", title=title, text=text), CleaningSettings(**rules))


# --------------------------------------------------------------------------- real seeds


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("furniture", FURNITURE)
def test_seed_body_has_no_site_furniture(cleaned_seeds, prefix: str, furniture: str) -> None:
    assert furniture not in cleaned_seeds[prefix].text


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_title_has_no_site_furniture(cleaned_seeds, prefix: str) -> None:
    title = cleaned_seeds[prefix].title
    assert title
    for furniture in FURNITURE:
        assert furniture not in title


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_body_has_no_blank_or_duplicate_lines(cleaned_seeds, prefix: str) -> None:
    lines = cleaned_seeds[prefix].text.split("\n")
    assert all(line.strip() for line in lines), "blank line in body"
    assert all(line == line.strip() for line in lines), "untrimmed line in body"
    assert len(lines) == len(set(lines)), "duplicate line in body"
    assert "\r" not in cleaned_seeds[prefix].text


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_keeps_substantive_paragraphs(cleaned_seeds, prefix: str) -> None:
    body = cleaned_seeds[prefix].text
    for phrase in SUBSTANCE[prefix]:
        assert phrase in body, phrase


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_body_is_not_normalized_for_display(raw_seeds, cleaned_seeds, prefix: str) -> None:
    raw = raw_seeds[prefix].text
    # Every cleaned line is an original line (whitespace aside): cleaning drops lines, never rewrites them.
    raw_lines = {" ".join(line.split()) for line in raw.split("\n")}
    for line in cleaned_seeds[prefix].text.split("\n"):
        assert line in raw_lines, line


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_body_keeps_most_of_the_article(raw_seeds, cleaned_seeds, prefix: str) -> None:
    raw_lines = [ln for ln in raw_seeds[prefix].text.split("\n") if len(ln.strip()) > 100]
    body_lines = cleaned_seeds[prefix].text.split("\n")
    # Every long (paragraph-sized) raw line survives, except the glued title of 002 and footers.
    for line in raw_lines:
        if cleaned_seeds[prefix].title in line or any(f in line for f in FURNITURE):
            continue
        assert line.strip() in body_lines, line[:60]


@pytest.mark.parametrize("prefix", ["000", "001", "002", "004"])
def test_seed_title_is_first_line_when_it_looks_like_a_headline(seed_files, cleaned_seeds, prefix: str) -> None:
    first_line = seed_files[prefix].read_text(encoding="utf-8").split("\n")[0].strip()
    assert cleaned_seeds[prefix].title == first_line


def test_seed_002_glued_repeated_title_removed(cleaned_seeds) -> None:
    article = cleaned_seeds["002"]
    assert article.title == "عام على هزيمة داعش بدير الزور.. التحالف الدولي يخفض قواته في سوريا"
    for line in article.text.split("\n"):
        assert article.title not in line
    assert "سورياعام" not in article.text
    assert article.text.split("\n")[0].startswith("كشف التحالف الدولي")


def test_seed_003_title_is_the_repeated_short_line(cleaned_seeds) -> None:
    article = cleaned_seeds["003"]
    assert article.title == "التحالف يتعهد بدعم المجالس المحلية شرق الفرات"
    assert article.title not in article.text
    # The lede (line 1) stays body text, as the first paragraph.
    assert article.text.split("\n")[0].startswith("تعهد التحالف الدولي ضد «داعش» بتقديم الدعم")


def test_seed_001_widget_and_url_lines_dropped_caption_kept(cleaned_seeds) -> None:
    lines = cleaned_seeds["001"].text.split("\n")
    assert "ع ع ع" not in lines
    assert not any(line.startswith("https://") for line in lines)
    assert lines[-1].startswith("واستعاد التنظيم نشاطه")


def test_seed_metadata_preserved(raw_seeds, cleaned_seeds) -> None:
    for prefix, article in cleaned_seeds.items():
        raw = raw_seeds[prefix]
        assert (article.doc_id, article.source, article.path) == (raw.doc_id, raw.source, raw.path)


def test_clean_is_idempotent_on_seeds(cleaned_seeds) -> None:
    for article in cleaned_seeds.values():
        again = clean_article(article, CleaningSettings())
        assert (again.title, again.text) == (article.title, article.text)


# --------------------------------------------------------------------------- synthetic


def test_cut_marker_as_first_line_does_not_cut() -> None:
    article = _clean("الأكثر قراءة\nالفقرة الأولى من الخبر.\nالفقرة الثانية من الخبر.")
    assert "الفقرة الأولى من الخبر." in article.text
    assert "الفقرة الثانية من الخبر." in article.text


@pytest.mark.parametrize("marker", ["الأكثر قراءة", "مقالات متعلقة", "لم تشترك بعد", "اقرأ أيضاً:", "شارك هذا المقال"])
def test_cut_marker_later_drops_the_rest(marker: str) -> None:
    article = _clean(f"عنوان الخبر\nالفقرة الأولى.\n{marker}\nخبر آخر لا علاقة له.\nرابط آخر.")
    assert article.title == "عنوان الخبر"
    assert article.text == "الفقرة الأولى."


def test_cut_marker_matched_ignoring_punctuation_and_spacing() -> None:
    article = _clean("عنوان الخبر\nالفقرة الأولى.\n  الأكثر   قراءة:  \nخبر آخر.")
    assert article.text == "الفقرة الأولى."


def test_cut_marker_inside_a_sentence_does_not_cut() -> None:
    article = _clean("عنوان\nكانت هذه القصة من الأكثر قراءة هذا الأسبوع.\nفقرة أخيرة.")
    assert article.text == "كانت هذه القصة من الأكثر قراءة هذا الأسبوع.\nفقرة أخيرة."


def test_single_line_article_is_body_with_empty_title() -> None:
    article = _clean("  قال المتحدث إن الحملة مستمرة في دير الزور.  \n\n")
    assert article.title == ""
    assert article.text == "قال المتحدث إن الحملة مستمرة في دير الزور."


def test_explicit_title_is_kept() -> None:
    text = "الفقرة الأولى من الخبر، وهي طويلة بما يكفي لتكون فقرة.\nسطر قصير مكرر\nسطر قصير مكرر\nفقرة أخرى."
    article = _clean(text, title="  العنوان الصريح من HTML  ")
    assert article.title == "العنوان الصريح من HTML"
    assert article.text.split("\n") == [
        "الفقرة الأولى من الخبر، وهي طويلة بما يكفي لتكون فقرة.",
        "سطر قصير مكرر",
        "فقرة أخرى.",
    ]


def test_explicit_title_repeated_in_body_is_removed() -> None:
    article = _clean("العنوان الصريح\nالعنوان الصريح.\nنص الخبر.", title="العنوان الصريح")
    assert article.title == "العنوان الصريح"
    assert article.text == "نص الخبر."


def test_title_glued_to_itself_is_not_body() -> None:
    title = "عنوان الخبر المكرر"
    article = _clean(f"{title}\n{title}{title}{title}\nنص الخبر.")
    assert article.title == title
    assert article.text == "نص الخبر."


def test_lede_first_line_with_repeated_short_headline_near_end() -> None:
    lede = "أعلن المتحدث الرسمي اليوم أن الحملة الأمنية ستستمر حتى نهاية الشهر في ريف دير الزور."
    article = _clean(f"{lede}\nفقرة ثانية من الخبر.\nالحملة مستمرة في دير الزور\nالحملة مستمرة في دير الزور")
    assert article.title == "الحملة مستمرة في دير الزور"
    assert article.text == f"{lede}\nفقرة ثانية من الخبر."


def test_first_line_is_title_when_no_repeated_short_line() -> None:
    lede = "أعلن المتحدث الرسمي اليوم أن الحملة الأمنية ستستمر."
    article = _clean(f"{lede}\nفقرة ثانية.")
    assert article.title == lede
    assert article.text == "فقرة ثانية."


def test_drop_lines_and_url_lines_anywhere() -> None:
    text = "عنوان\nlogo\nفقرة أولى.\nع ع ع\nhttps://example.com/a?b=1\nwww.example.org\nexample.com/news/1\nفقرة ثانية."
    article = _clean(text)
    assert article.text == "فقرة أولى.\nفقرة ثانية."


def test_inline_url_in_a_sentence_is_kept() -> None:
    article = _clean("عنوان\nنشر البيان على https://example.com/x أمس.")
    assert article.text == "نشر البيان على https://example.com/x أمس."


def test_duplicate_lines_dropped_ignoring_punctuation_and_diacritics() -> None:
    article = _clean("عنوان\nقال المتحدث إن الحملة مستمرة.\nقالَ المتحدثُ: إن الحملة مستمرة!\nفقرة أخرى.")
    assert article.text == "قال المتحدث إن الحملة مستمرة.\nفقرة أخرى."


def test_whitespace_and_line_endings_normalized() -> None:
    article = _clean("عنوان\r\nفقرة\u00a0\u00a0أولى\tهنا.\r\n\r\n   \rفقرة   ثانية.  ")
    assert article.title == "عنوان"
    assert article.text == "فقرة أولى هنا.\nفقرة ثانية."


def test_custom_rules_are_used() -> None:
    article = _clean("عنوان\nفقرة.\nإعلان\nفقرة ثانية.\nنهاية المقال\nتذييل.",
                     cut_at_lines=["نهاية المقال"], drop_lines=["إعلان"])
    assert article.text == "فقرة.\nفقرة ثانية."


def test_input_article_not_mutated() -> None:
    original = Article(doc_id="x", text="عنوان\nفقرة.\nالأكثر قراءة\nتذييل.", url="https://example.com/a")
    cleaned = clean_article(original, CleaningSettings())
    assert original.text == "عنوان\nفقرة.\nالأكثر قراءة\nتذييل."
    assert original.title == ""
    assert cleaned.url == "https://example.com/a"
    assert cleaned.text == "فقرة."


def test_only_furniture_gives_empty_body() -> None:
    article = _clean("ع ع ع\nlogo\nhttps://example.com")
    assert article.text == ""


# --------------------------------------------------------------------------- the date
@pytest.mark.parametrize(
    ("given", "text", "iso"),
    [
        ("Sun, 18 Feb 2018 21:35:43 +0400", "نص الخبر.", "2018-02-18"),  # a record's date, any form
        ("٣١ يوليو ٢٠٢٠", "نص الخبر.", "2020-07-31"),
        ("", "عنوان الخبر\nالسبت ١٥ تشرين الثاني ٢٠٢٠\nنص الخبر.", "2020-11-15"),  # the dateline
        ("", "السبت ١٥ تشرين الثاني ٢٠٢٠\nعنوان الخبر\nنص الخبر.", "2020-11-15"),
        ("2019-01-01", "عنوان\nالسبت ١٥ تشرين الثاني ٢٠٢٠\nنص.", "2019-01-01"),  # the record's date wins
        ("yesterday", "عنوان\nالسبت ١٥ تشرين الثاني ٢٠٢٠\nنص.", ""),  # given but no date: not replaced by a guess
        ("", "عنوان\nقال المتحدث أمس الثلاثاء، 28 من تموز، إن القوات تحركت.", ""),
    ],
)
def test_the_date_is_the_records_or_the_datelines_as_iso(given: str, text: str, iso: str) -> None:
    assert clean_article(Article(doc_id="x", text=text, date=given), CleaningSettings()).date == iso


def test_seeds_have_no_whole_date_and_get_none(raw_seeds) -> None:
    """The seeds say "أمس الثلاثاء، 28 من تموز" (no year): no date is made up for them."""
    for article in raw_seeds.values():
        assert clean_article(article, CleaningSettings()).date == ""
