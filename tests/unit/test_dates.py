"""Publication dates as outlets write them → ISO dates, and never a guessed one."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.dates import day_number, find_dateline, parse_date, period_bounds, transliterated_months


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        # Levantine month names (Syria, Lebanon, Jordan, Iraq)
        ("الثلاثاء 28 تموز 2020", "2020-07-28"),
        ("28 من تموز 2020", "2020-07-28"),
        ("1 كانون الثاني 2019", "2019-01-01"),
        ("15 كانون الأول 2018", "2018-12-15"),
        ("10 تشرين الأول 2019", "2019-10-10"),
        ("السبت ١٥ تشرين الثاني ٢٠٢٠", "2020-11-15"),
        ("3 أيار 2021", "2021-05-03"),
        ("12 آب 2020", "2020-08-12"),
        ("٣ شباط ٢٠٢١", "2021-02-03"),
        ("20 آذار 2011", "2011-03-20"),
        ("9 نيسان 2003", "2003-04-09"),
        ("2 حزيران 2017", "2017-06-02"),
        ("30 أيلول 2015", "2015-09-30"),
        # Egyptian/Gulf month names, and the two series side by side
        ("٢٨ يوليو ٢٠٢٠", "2020-07-28"),
        ("الأحد 3 يناير 2021", "2021-01-03"),
        ("14 فبراير 2022", "2022-02-14"),
        ("12 ابريل 2020", "2020-04-12"),
        ("2 يونيه 2017", "2017-06-02"),
        ("10 اكتوبر 2019", "2019-10-10"),
        ("25 ديسمبر 2016م", "2016-12-25"),
        ("الثلاثاء 28 تموز/يوليو 2020", "2020-07-28"),
        ("١٠ تشرين الأول (أكتوبر) ٢٠١٩", "2019-10-10"),
        ("نشر بتاريخ 5 من شهر مارس عام 2019", "2019-03-05"),
        # Maghrebi names
        ("14 جويلية 2021", "2021-07-14"),
        # machine forms: feeds (RFC 2822), page metadata (ISO 8601), numeric datelines
        ("Sun, 18 Feb 2018 21:35:43 +0400", "2018-02-18"),
        ("Tue, 28 Jul 2020 23:30:00 -0500", "2020-07-28"),  # the date where it was published
        ("2020-07-28T10:00:00+03:00", "2020-07-28"),
        ("2020-07-28T01:00:00Z", "2020-07-28"),
        ("2020-07-28", "2020-07-28"),
        ("28/07/2020", "2020-07-28"),
        ("٢٨/٠٧/٢٠٢٠", "2020-07-28"),
        ("July 28, 2020", "2020-07-28"),
        ("28 July 2020", "2020-07-28"),
    ],
)
def test_written_dates_are_read(written: str, iso: str):
    assert parse_date(written) == iso


@pytest.mark.parametrize(
    "written",
    [
        "",
        "أمس الثلاثاء، 28 من تموز",  # no year: not guessed
        "نيسان 2020",  # no day
        "2020",
        "31 شباط 2020",  # no such day
        "5 مارسيل 2020",  # a word that begins like a month
        "قبل ثلاثة أيام",
        "not a date",
    ],
)
def test_what_is_not_a_whole_date_is_left_empty(written: str):
    assert parse_date(written) == ""


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("عنوان الخبر\nالسبت ١٥ تشرين الثاني ٢٠٢٠\nقال المتحدث إن ...", "2020-11-15"),
        ("دمشق، 28 تموز 2020 (أ ف ب) - قال المتحدث باسم التحالف الدولي إن قواته تحركت شرقاً إلى دير الزور والحسكة.", "2020-07-28"),
        ("بيروت - 3 أيار/مايو 2021: أعلنت الحكومة اللبنانية اليوم عن خطة جديدة لدعم الليرة في الأسواق المحلية والخارجية.", "2021-05-03"),
        # a date the article is about, inside the lead, is not when it was published
        ("بدأت الاحتجاجات في 15 آذار 2011 في درعا جنوبي سوريا، ثم امتدت إلى مدن أخرى كثيرة على مدى أشهر طويلة بعد ذلك.", ""),
        ("عنوان\nفقرة أولى\nفقرة ثانية\nالثلاثاء 28 تموز 2020", ""),  # past the first lines
        ("أعلن التحالف الدولي تحركه من الرقة إلى الحسكة ودير الزور أمس الثلاثاء، 28 من تموز.", ""),
    ],
)
def test_a_dateline_is_found_only_where_datelines_are(text: str, iso: str):
    assert find_dateline(text) == iso


def test_day_numbers_order_like_dates():
    assert day_number("2020-07-28") == 20200728
    assert day_number("2019-12-31") < day_number("2020-01-01")
    assert day_number("") is None


@pytest.mark.parametrize(
    ("written", "first", "last"),
    [
        ("2020", date(2020, 1, 1), date(2020, 12, 31)),
        ("2020-02", date(2020, 2, 1), date(2020, 2, 29)),
        ("2019-12", date(2019, 12, 1), date(2019, 12, 31)),
        ("2020-07-28", date(2020, 7, 28), date(2020, 7, 28)),
        ("٢٠٢٠-٠٧", date(2020, 7, 1), date(2020, 7, 31)),
    ],
)
def test_periods_cover_whole_months_and_years(written: str, first: date, last: date):
    assert period_bounds(written, end=False) == first
    assert period_bounds(written, end=True) == last


@pytest.mark.parametrize("written", ["July 2020", "2020-13", "2020-02-30", "20-07", ""])
def test_a_period_that_is_not_a_date_says_what_is_accepted(written: str):
    with pytest.raises(ValueError, match="YYYY, YYYY-MM or YYYY-MM-DD"):
        period_bounds(written, end=False)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("بدأت في أيار الماضي", "بدأت في مايو الماضي"),
        ("منذ 28 تموز وكانون الثاني", "منذ 28 يوليو ويناير"),
        ("بآذار وتشرين الأول", "بمارس وأكتوبر"),
        ("في 3 آب 2020", "في 3 أغسطس 2020"),
        ("آب الأسرة وأب", "آب الأسرة وأب"),  # "father", not August: no day before it
        ("مارس الضغط في مايو", "مارس الضغط في مايو"),
    ],
)
def test_levantine_month_names_are_written_as_the_transliterated_ones(text: str, expected: str):
    assert transliterated_months(text) == expected
