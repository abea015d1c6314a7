"""Publication dates: any written form → an ISO date (``YYYY-MM-DD``), or nothing.

Machine forms (ISO 8601, RFC 2822 as in RSS and e-mail) are read with the standard library.
Arabic datelines are read here: ``dateparser`` (measured: 1.5.0) knows the Egyptian/Gulf month
names (يناير … يوليو) but not the Levantine ones (كانون الثاني … تموز) that Syrian, Lebanese,
Jordanian and Iraqi outlets write, so the month table below holds both series, plus English
names. Arabic-Indic digits are read as digits. A date is never guessed: a day and month with no
year ("أمس الثلاثاء، 28 من تموز") is not a date, and neither is a bare year.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime

from assistant.arabic import normalize

# Month names, normalized as assistant.arabic.normalize writes them (أ/إ/آ → ا, ة → ه, ى → ي).
_MONTHS: dict[int, tuple[str, ...]] = {
    1: ("كانون الثاني", "يناير", "جانفي", "january", "jan"),
    2: ("شباط", "فبراير", "فيفري", "february", "feb"),
    3: ("اذار", "مارس", "march", "mar"),
    4: ("نيسان", "ابريل", "افريل", "april", "apr"),
    5: ("ايار", "مايو", "ماي", "may"),
    6: ("حزيران", "يونيو", "يونيه", "جوان", "june", "jun"),
    7: ("تموز", "يوليو", "يوليه", "جويليه", "جويلية", "july", "jul"),
    8: ("اب", "اغسطس", "اغشت", "اوت", "august", "aug"),
    9: ("ايلول", "سبتمبر", "september", "sep", "sept"),
    10: ("تشرين الاول", "اكتوبر", "october", "oct"),
    11: ("تشرين الثاني", "نوفمبر", "november", "nov"),
    12: ("كانون الاول", "ديسمبر", "december", "dec"),
}
_MONTH_OF = {name: number for number, names in _MONTHS.items() for name in names}
# Longest first, so that "كانون الثاني" is not read as a shorter name.
_MONTH = "|".join(sorted(map(re.escape, _MONTH_OF), key=len, reverse=True))
_END = r"(?![^\W\d_])"  # a month name ends where its word does
# "28 تموز 2020", "28 من تموز/يوليو 2020", "28 July 2020"; the second name of a pair is ignored.
_DAY_MONTH_YEAR = re.compile(
    rf"(?<!\d)(?P<day>\d{{1,2}})\s*(?:من\s+)?(?:شهر\s+)?(?P<month>{_MONTH}){_END}(?:\s*[/(-]\s*(?:{_MONTH}){_END}\)?)?"
    rf"\s*[,،]?\s*(?:عام\s+|سنه\s+)?(?P<year>\d{{4}})(?!\d)",
    re.IGNORECASE,
)
# "July 28, 2020"
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![^\W\d_])(?P<month>{_MONTH}){_END}\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*(?P<year>\d{{4}})(?!\d)",
    re.IGNORECASE,
)
# "2020-07-28", "2020/07/28" (year first); "28/07/2020", "28-07-2020", "28.07.2020" (day first,
# as Arabic and European outlets write it).
_YEAR_FIRST = re.compile(r"(?<!\d)(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)")
_DAY_FIRST = re.compile(r"(?<!\d)(?P<day>\d{1,2})[-/.](?P<month>\d{1,2})[-/.](?P<year>\d{4})(?!\d)")
_PATTERNS = (_DAY_MONTH_YEAR, _MONTH_DAY_YEAR, _YEAR_FIRST, _DAY_FIRST)
# Years a news article can be from.
_YEARS = range(1900, 2101)


def _prepare(text: str) -> str:
    return " ".join(normalize(text).split())


def _valid(year: str, month: str | int, day: str) -> date | None:
    try:
        month_number = month if isinstance(month, int) else int(month) if month.isdigit() else _MONTH_OF[month.lower()]
        found = date(int(year), month_number, int(day))
    except (ValueError, KeyError):
        return None
    return found if found.year in _YEARS else None


def _first_date(text: str) -> tuple[int, date] | None:
    """The earliest written date in ``text`` (already prepared): (where it starts, the date)."""
    best: tuple[int, date] | None = None
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            found = _valid(match["year"], match["month"], match["day"])
            if found is not None:
                if best is None or match.start() < best[0]:
                    best = (match.start(), found)
                break
    return best


# The month names transliterated from English, as Arabic writes them; a translator knows these.
_TRANSLITERATED = ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر")
# The Levantine and Iraqi names (كانون الثاني ... كانون الأول) as Arabic writes them, longest first;
# "آب" (August) is also "father" (أب), so it is read as a month only after a day's number.
_LEVANTINE = {
    "كانون الثاني": 1, "شباط": 2, "آذار": 3, "اذار": 3, "نيسان": 4, "أيار": 5, "ايار": 5, "حزيران": 6, "تموز": 7,
    "أيلول": 9, "ايلول": 9, "تشرين الأول": 10, "تشرين الاول": 10, "تشرين الثاني": 11, "كانون الأول": 12, "كانون الاول": 12,
}
_LEVANTINE_NAME = re.compile(
    rf"(?<![^\W\d_])(?P<prefix>[وفبل]?)(?P<month>{'|'.join(sorted(map(re.escape, _LEVANTINE), key=len, reverse=True))}|(?<=\d )آب){_END}"
)


def transliterated_months(text: str) -> str:
    """``text`` with the Levantine month names written as the ones transliterated from English
    (أيار → مايو): the small model translates أيار as "April", مايو as "May"."""
    return _LEVANTINE_NAME.sub(lambda m: m["prefix"] + _TRANSLITERATED[_LEVANTINE.get(m["month"], 8) - 1], text)


def parse_date(value: str | None) -> str:
    """``value`` as an ISO date (``YYYY-MM-DD``), or "" when it holds no whole date.

    Accepts ISO 8601 (with or without a time and zone), RFC 2822 ("Tue, 28 Jul 2020 10:00:00
    +0300"), and a written date in Arabic or English, in Arabic-Indic digits or not. A time with
    a zone gives the date where it was published (the zone's local date), not UTC's.
    """
    text = (value or "").strip()
    if not text:
        return ""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    found = _first_date(_prepare(text))
    return found[1].isoformat() if found else ""


# A dateline is in the first lines of the article: a short line of its own ("الثلاثاء 28 تموز
# 2020"), or the start of the lead before a dash or colon ("دمشق، 28 تموز 2020 (أ ف ب) - ...").
DATELINE_LINES = 3
DATELINE_SHORT_LINE = 80
DATELINE_LEAD_CHARS = 60
_DATELINE_END = re.compile(r"[-–—:]")


def find_dateline(text: str) -> str:
    """The publication date stated in an article's dateline, as an ISO date, or "".

    Only the first lines are looked at, and only a date standing alone on a short line or opening
    the lead: a date further into the text is what the article is about, not when it was
    published.
    """
    lines = [line for line in text.splitlines() if line.strip()][:DATELINE_LINES]
    for line in lines:
        prepared = _prepare(line)
        found = _first_date(prepared)
        if found is None:
            continue
        start, when = found
        if len(prepared) <= DATELINE_SHORT_LINE:
            return when.isoformat()
        if start <= DATELINE_LEAD_CHARS and _DATELINE_END.search(prepared, start, start + DATELINE_LEAD_CHARS + 40):
            return when.isoformat()
    return ""


def day_number(iso: str) -> int | None:
    """``YYYY-MM-DD`` → the integer YYYYMMDD that date filters compare; None for no date."""
    return int(iso.replace("-", "")) if iso else None


def period_bounds(value: str, end: bool) -> date:
    """A period written ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` → its first day, or with ``end`` its
    last. Raises ValueError with what is accepted."""
    text = normalize(value.strip())
    match = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", text)
    if not match:
        raise ValueError(f"{value!r} is not a date: write YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = int(match[1]), match[2], match[3]
    try:
        if day is not None:
            return date(year, int(month), int(day))
        if month is not None:
            first = date(year, int(month), 1)
            if not end:
                return first
            following = date(year + (first.month == 12), first.month % 12 + 1, 1)
            return date.fromordinal(following.toordinal() - 1)
        return date(year, 12, 31) if end else date(year, 1, 1)
    except ValueError:
        raise ValueError(f"{value!r} is not a date: write YYYY, YYYY-MM or YYYY-MM-DD") from None
