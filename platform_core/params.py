"""Request parameters as Label Studio's clients send them, read one way by every API module:
booleans, integers, id lists (query string or JSON body), dates and date-times, page numbers.
Each raises django's ValidationError naming the field, which the API answers as a 400."""

import json
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

TRUE_VALUES = {"true", "1", "yes", "on"}


def truthy(value) -> bool:
    """A boolean as LS's clients send it, in a query string or a body: true, True, 1, "true", "1"."""
    return str(value).strip().lower() in TRUE_VALUES


def query_bool(request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    return default if value is None else truthy(value)


def query_ids(request, name: str) -> list[int] | None:
    """`name=[1,2]` (LS), `name=1,2` or repeated `name=1&name=2`; None when absent."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    ids = []
    for value in values:
        text = value.strip()
        try:
            items = json.loads(text) if text.startswith("[") else text.split(",")
            ids.extend(int(item) for item in items if str(item).strip())
        except (ValueError, TypeError):
            raise ValidationError({name: f"Must be a list of integers, got {value!r}."}) from None
    return ids


def body_ids(value, *, field: str) -> list[int]:
    """A list of integer ids from a JSON body (booleans are not ids)."""
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise ValidationError({field: "Must be a list of integers."})
    return value


def query_int(request, name: str, default: int | None = None, *, minimum: int = 1, maximum: int | None = None):
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: f"Must be an integer, got {value!r}."}) from None
    if number < minimum or (maximum is not None and number > maximum):
        raise ValidationError({name: f"Must be between {minimum} and {maximum or 'any'}."})
    return number


def parse_moment(value: str, *, field: str) -> tuple[datetime, bool]:
    """An ISO-8601 date-time, or a bare date (then its midnight), and whether it was a bare date.
    A time without a zone is in the current time zone."""
    moment, bare_date = None, False
    if isinstance(value, str):
        text = value.strip()
        try:
            day = parse_date(text)  # first: parse_datetime also takes a bare date, as its midnight
            if day is not None:
                moment, bare_date = datetime.combine(day, time.min), True
            else:
                moment = parse_datetime(text)
        except ValueError:  # well-formed but impossible, as 2024-02-30
            moment = None
    if moment is None:
        raise ValidationError({field: f"Give an ISO-8601 date or date-time, got {value!r}."})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment, bare_date


def query_datetime(request, name: str) -> datetime | None:
    """`parse_moment` of a query parameter; None when absent or blank. A `+` of a zone offset sent
    unencoded arrives as a space, and is read as the `+` it was."""
    value = (request.query_params.get(name) or "").strip()
    if not value:
        return None
    if "T" in value:
        value = value.replace(" ", "+")
    return parse_moment(value, field=name)[0]


def page_params(request, *, default_size: int, max_size: int) -> tuple[int, int]:
    """LS's `page` (from 1) and `page_size` (at most `max_size`)."""
    return (query_int(request, "page", 1),
            query_int(request, "page_size", default_size, maximum=max_size))
