"""``Filters``: what users type becomes a Chroma ``where`` and a clear error when it is wrong."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.errors import InputError
from assistant.models import Filters


def test_no_filter_restricts_nothing():
    assert not Filters().active
    assert Filters().where() is None
    assert not Filters.of([], "", None).active


def test_outlets_and_a_month_become_one_where():
    filters = Filters.of(["Enab Baladi", " Syria TV "], "2020-07", "2020-07")
    assert filters.active
    assert (filters.since, filters.until) == (date(2020, 7, 1), date(2020, 7, 31))
    assert filters.where() == {
        "$and": [
            {"source": {"$in": ["Enab Baladi", "Syria TV"]}},
            {"day": {"$gte": 20200701}},
            {"day": {"$lte": 20200731}},
        ]
    }
    assert filters.describe() == "from Enab Baladi, Syria TV; dated 2020-07-01 to 2020-07-31"


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        (Filters(sources="Enab Baladi"), {"source": {"$in": ["Enab Baladi"]}}),
        (Filters(since=date(2020, 1, 2)), {"day": {"$gte": 20200102}}),
        (Filters(until="2019"), {"day": {"$lte": 20191231}}),
    ],
)
def test_one_condition_is_not_wrapped(filters: Filters, where: dict):
    assert filters.where() == where


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("July 2020", None, "'July 2020' is not a date: write YYYY, YYYY-MM or YYYY-MM-DD"),
        (None, "2020-02-30", "'2020-02-30' is not a date: write YYYY, YYYY-MM or YYYY-MM-DD"),
        ("2021", "2020-12", "since (2021-01-01) is after until (2020-12-31)"),
    ],
)
def test_what_users_type_wrong_is_one_clear_line(since, until, message):
    with pytest.raises(InputError) as error:
        Filters.of(None, since, until)
    assert str(error.value) == message

