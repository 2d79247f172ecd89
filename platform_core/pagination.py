"""LS-style page-number pages ({"count", "next", "previous", "results"}) for the endpoints that
read `page` / `page_size` themselves. A page past the last one answers empty results rather than
404: the SDK's pagers ask for pages until one comes back empty. (Endpoints on DRF's
PageNumberPagination keep its 404 there, as Label Studio answers.)"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from platform_core.params import page_params


@dataclass(frozen=True)
class Page:
    rows: list
    count: int


def page_of(items, *, page: int, page_size: int) -> Page:
    """One page of a queryset or a list, and the total (a page past the end is empty)."""
    count = items.count() if isinstance(items, QuerySet) else len(items)
    offset = (page - 1) * page_size
    return Page(rows=list(items[offset:offset + page_size]) if offset < count else [], count=count)


def page_response(request, items, *, serialize: Callable[[list], list], default_size: int, max_size: int,
                  pager: Callable[..., Page] = page_of) -> Response:
    """The page the request asks for of `items` (a queryset or a list), its rows turned into
    results by `serialize(rows)`. `pager(items, page=, page_size=)` cuts the page (page_of, or one
    that counts in the same query)."""
    number, size = page_params(request, default_size=default_size, max_size=max_size)
    page = pager(items, page=number, page_size=size)
    url = request.build_absolute_uri()
    in_range = number == 1 or (number - 1) * size < page.count
    previous = None
    if number > 1 and in_range:
        previous = remove_query_param(url, "page") if number == 2 else replace_query_param(url, "page", number - 1)
    return Response({
        "count": page.count,
        "next": replace_query_param(url, "page", number + 1) if number * size < page.count else None,
        "previous": previous,
        "results": serialize(page.rows),
    })
