"""The shared request-parameter readers and LS-style pages: dates read one way everywhere, errors
name the field, and a page past the end is empty rather than 404."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from platform_core.pagination import page_response
from platform_core.params import parse_moment, query_datetime


def _request(query: str = "") -> Request:
    return Request(APIRequestFactory().get(f"/api/things/?{query}"))


@pytest.mark.parametrize(
    ("value", "moment", "bare_date"),
    [
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC), True),
        (" 2024-03-05T10:30 ", datetime(2024, 3, 5, 10, 30, tzinfo=UTC), False),
        ("2024-03-05 10:30:00", datetime(2024, 3, 5, 10, 30, tzinfo=UTC), False),
        ("2024-03-05T10:30:00+02:00", datetime(2024, 3, 5, 10, 30, tzinfo=timezone(timedelta(hours=2))), False),
        ("2024-03-05T10:30:00Z", datetime(2024, 3, 5, 10, 30, tzinfo=UTC), False),
    ],
)
def test_parse_moment(value, moment, bare_date):
    parsed, bare = parse_moment(value, field="since")
    assert parsed == moment and parsed.tzinfo is not None and bare is bare_date


@pytest.mark.parametrize("value", ["", "soon", "2024-02-30", "2024-02-30T10:00", "2024-13-01", None, 5])
def test_an_unreadable_moment_names_the_field(value):
    with pytest.raises(ValidationError) as raised:
        parse_moment(value, field="since")
    assert list(raised.value.message_dict) == ["since"]


def test_query_datetime():
    assert query_datetime(_request(), "since") is None
    assert query_datetime(_request("since=%20"), "since") is None
    # An unencoded `+` of a zone offset arrives as a space.
    assert query_datetime(_request("since=2024-03-05T10:30:00+02:00"), "since") == \
        datetime(2024, 3, 5, 8, 30, tzinfo=UTC)


def _page(query: str, items=tuple(range(5))) -> dict:
    return page_response(_request(query), list(items), serialize=lambda rows: [n * 10 for n in rows],
                         default_size=2, max_size=3).data


def test_pages_link_their_neighbours():
    first = _page("")
    assert first["count"] == 5 and first["results"] == [0, 10] and first["previous"] is None
    assert first["next"].endswith("?page=2")
    middle = _page("page=2")
    assert middle["results"] == [20, 30] and middle["previous"].endswith("/api/things/")
    last = _page("page=3&page_size=2")
    assert last["results"] == [40] and last["next"] is None and "page=2" in last["previous"]


def test_a_page_past_the_end_is_empty_not_404():
    past = _page("page=9")
    assert past == {"count": 5, "next": None, "previous": None, "results": []}
    assert _page("page=2", items=()) == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize(("query", "field"), [("page=0", "page"), ("page=x", "page"), ("page_size=4", "page_size")])
def test_bad_page_parameters_name_the_field(query, field):
    with pytest.raises(ValidationError) as raised:
        _page(query)
    assert list(raised.value.message_dict) == [field]
