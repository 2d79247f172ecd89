"""The data manager (Label Studio's DM): filters and ordering compiled to querysets, tabs ("views"),
and bulk actions on a selection of tasks.

User values never become SQL text: filter values and task-data keys are bound parameters, and a
number read from task data is cast only when it looks numeric, so no filter can make a query fail
at run time (bad input is a 400 naming the filter item, found before any query runs).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, NullIf
from django.db.models.lookups import Exact, Regex
from django.utils import timezone

from billing import limits as billing_limits
from labeling import selectors, services, webhooks
from labeling.models import (
    Annotation,
    AnnotationReview,
    DataManagerView,
    Prediction,
    Project,
    Task,
    TaskAssignment,
)
from platform_core.params import parse_moment

NUMBER, STRING, BOOLEAN, DATETIME, LIST = "Number", "String", "Boolean", "Datetime", "List"

_COMPARISONS = {"equal": "exact", "not_equal": "exact", "less": "lt", "greater": "gt", "less_or_equal": "lte",
                "greater_or_equal": "gte"}
_TEXT_MATCHES = {"contains": "icontains", "not_contains": "icontains", "starts_with": "istartswith",
                 "ends_with": "iendswith", "regex": "regex"}
_NEGATED = frozenset({"not_equal", "not_contains", "not_in", "not_in_list"})
_RANGES = ("in", "not_in")
_LISTS = ("in_list", "not_in_list")

OPERATORS = {
    NUMBER: ("equal", "not_equal", "less", "greater", "less_or_equal", "greater_or_equal", "in", "not_in",
             "in_list", "not_in_list", "empty"),
    DATETIME: ("equal", "not_equal", "less", "greater", "less_or_equal", "greater_or_equal", "in", "not_in",
               "empty"),
    STRING: ("equal", "not_equal", "contains", "not_contains", "starts_with", "ends_with", "regex", "in_list",
             "not_in_list", "empty"),
    BOOLEAN: ("equal", "not_equal", "empty"),
    LIST: ("contains", "not_contains", "empty"),
}
# Task-data columns may also test whether the key is there at all.
DATA_KEY_OPERATORS = ("exists", "not_exists")
_PEOPLE_OPERATORS = ("contains", "not_contains", "equal", "not_equal", "in_list", "not_in_list", "empty")
_RESULTS_OPERATORS = ("contains", "not_contains", "regex", "empty")
_MODEL_VERSION_OPERATORS = ("contains", "not_contains", "equal", "not_equal", "in_list", "not_in_list", "empty")

# A numeric string PostgreSQL's numeric input accepts (exponent bounded, so never an overflow).
_NUMERIC_TEXT = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$"


class _ItemError(Exception):
    """One filter item is unusable; the message says why."""


# --- SQL pieces --------------------------------------------------------------------------------

class _DataKey(Func):
    """`data -> key` (jsonb) or `data ->> key` (text), the key a bound parameter."""

    template = "(%(expressions)s)"

    def __init__(self, key: str, *, text: bool):
        super().__init__(F("data"), Cast(Value(key), TextField()),
                         output_field=TextField() if text else JSONField())
        self.arg_joiner = " ->> " if text else " -> "


class _Numeric(Func):
    template = "(%(expressions)s)::numeric"
    output_field = DecimalField()


def _data_number(key: str):
    """A data value as numeric: JSON numbers and numeric strings; anything else is NULL."""
    text = _DataKey(key, text=True)
    kind = Func(_DataKey(key, text=False), function="jsonb_typeof", output_field=CharField())
    return Case(
        When(Q(Exact(kind, "number")) | Q(Regex(text, _NUMERIC_TEXT)), then=_Numeric(text)),
        default=None, output_field=DecimalField(),
    )


def _of_task(model, **filters) -> QuerySet:
    return model.objects.filter(task=OuterRef("pk"), **filters)


@dataclass(frozen=True)
class Seen:
    """Whose work filters and ordering may look at: every annotation (and review), or only those of
    `annotations_of_user` and the reviews of them, when the project hides other people's work from
    the caller (so a filter on "annotators" or on results cannot reveal it either)."""

    annotations_of_user: int | None = None

    def annotations(self, **filters) -> QuerySet:
        queryset = _of_task(Annotation, **filters)
        if self.annotations_of_user is not None:
            queryset = queryset.filter(completed_by_id=self.annotations_of_user)
        return queryset

    def reviews(self, **filters) -> QuerySet:
        queryset = AnnotationReview.objects.filter(annotation__task=OuterRef("pk"), **filters)
        if self.annotations_of_user is not None:
            queryset = queryset.filter(annotation__completed_by_id=self.annotations_of_user)
        return queryset

    def of_task(self, model, **filters) -> QuerySet:
        if model is Annotation:
            return self.annotations(**filters)
        return _of_task(model, **filters)


EVERYONE = Seen()


def _completed_at(seen: Seen):
    """LS's completed_at: when a labeled task got its last (non-skipped) annotation."""
    last = seen.annotations(was_cancelled=False).order_by("-created_at").values("created_at")[:1]
    return Case(When(is_labeled=True, then=Subquery(last)), default=None, output_field=DateTimeField())


def _count_of(queryset) -> Coalesce:
    counted = queryset.order_by().values("task").annotate(n=Count("id")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _reviews_count(seen: Seen, accepted: bool):
    counted = (seen.reviews(accepted=accepted).order_by().values("annotation__task")
               .annotate(n=Count("id")).values("n")[:1])
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _predictions_score(seen: Seen):
    mean = _of_task(Prediction).order_by().values("task").annotate(mean=Avg("score")).values("mean")[:1]
    return Subquery(mean, output_field=FloatField())


def _file_upload_name(seen: Seen):
    return Coalesce(NullIf(F("file_upload__original_name"), Value("")), F("file_upload__file"),
                    output_field=CharField())


# --- value checks ------------------------------------------------------------------------------

def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise _ItemError(f"value must be true or false, got {value!r}")


def _number(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _ItemError(f"value must be a number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _ItemError(f"value must be a number, got {value!r}") from None
    if not number.is_finite():
        raise _ItemError(f"value must be a finite number, got {value!r}")
    return number


def _integral_or_decimal(number: Decimal) -> int | Decimal:
    return int(number) if number == number.to_integral_value() else number


def _datetime(value) -> datetime:
    """A filter value as a date-time; one without a zone is UTC, whatever the request's zone."""
    try:
        with timezone.override(UTC):
            return parse_moment(value, field="value")[0]
    except ValidationError:
        raise _ItemError(f"value must be an ISO 8601 date and time, got {value!r}") from None


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _ItemError(f"value must be a string, got {value!r}")


def _user_ids(value) -> list[int]:
    values = value if isinstance(value, list) else [value]
    ids = []
    for one in values:
        if isinstance(one, dict):  # the DM sends people as objects in some versions
            one = one.get("id")
        if isinstance(one, bool) or not (isinstance(one, int) or (isinstance(one, str) and one.isdigit())):
            raise _ItemError(f"value must be a user id or a list of user ids, got {value!r}")
        ids.append(int(one))
    if not ids:
        raise _ItemError("value must name at least one user id")
    return ids


def _ids(value, *, field: str) -> list[int]:
    if not isinstance(value, list):
        raise ValidationError({"selectedItems": f"'{field}' must be a list of task ids."})
    ids = []
    for one in value:
        if isinstance(one, bool) or not (isinstance(one, int) or (isinstance(one, str) and one.isdigit())):
            raise ValidationError({"selectedItems": f"'{field}' must hold task ids, got {one!r}."})
        ids.append(int(one))
    return ids


def _invalid_regex(pattern: str) -> str | None:
    """PostgreSQL's verdict on a regular expression (its dialect is the one that runs it)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~ %s", [pattern])
    except DataError as exc:
        return str(exc).splitlines()[0]
    return None


# --- columns -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """A DM column. A scalar column compares `expression(seen)`; a set column (people, results)
    answers `match(seen, operator, value)` with EXISTS conditions. `seen` says whose work they
    may look at."""

    id: str
    title: str
    type: str
    expression: Callable[[Seen], Any] | None = None
    match: Callable[[Seen, str, Any], Q] | None = None
    operators: tuple[str, ...] = ()
    orderable: bool = True
    integer: bool = False
    coerce: Callable[[Any], Any] | None = None

    def allowed_operators(self) -> tuple[str, ...]:
        return self.operators or OPERATORS[self.type]


def _people_match(*, done_by: Callable[[Seen, list[int] | None], QuerySet], assignment_type: str):
    def match(seen: Seen, operator: str, value) -> Q:
        if operator == "empty":
            anyone = Q(Exists(done_by(seen, None))) | Q(Exists(_of_task(TaskAssignment, type=assignment_type)))
            return ~anyone if _boolean(value) else anyone
        ids = _user_ids(value)
        found = Q(Exists(done_by(seen, ids))) | Q(Exists(_of_task(TaskAssignment, type=assignment_type,
                                                                  assignee_id__in=ids)))
        return ~found if operator in _NEGATED else found
    return match


def _annotated_by(seen: Seen, ids):
    return seen.annotations(completed_by__isnull=False, **({"completed_by_id__in": ids} if ids else {}))


def _reviewed_by(seen: Seen, ids):
    return seen.reviews(**({"created_by_id__in": ids} if ids else {}))


def _results_match(model):
    def match(seen: Seen, operator: str, value) -> Q:
        if operator == "empty":
            has = Q(Exists(seen.of_task(model).exclude(result=[])))
            return ~has if _boolean(value) else has
        text = _text(value)
        as_text = seen.of_task(model).annotate(result_text=Cast("result", TextField()))
        found = Q(Exists(as_text.filter(**{f"result_text__{_TEXT_MATCHES[operator]}": text})))
        return ~found if operator in _NEGATED else found
    return match


def _model_versions_match(seen: Seen, operator: str, value) -> Q:
    if operator == "empty":
        has = Q(Exists(_of_task(Prediction).exclude(model_version="")))
        return ~has if _boolean(value) else has
    versions = [_text(one) for one in (value if isinstance(value, list) else [value])]
    if not versions:
        raise _ItemError("value must name at least one model version")
    if operator in ("contains", "not_contains") and not isinstance(value, list):
        condition = Q(model_version__icontains=versions[0])
    else:
        condition = Q(model_version__in=versions)
    found = Q(Exists(_of_task(Prediction).filter(condition)))
    return ~found if operator in _NEGATED else found


def _field(name: str) -> Callable[[Seen], F]:
    return lambda seen: F(name)


_COLUMN_LIST = [
    Column("id", "ID", NUMBER, _field("id"), integer=True),
    Column("inner_id", "Inner ID", NUMBER, _field("inner_id"), integer=True),
    Column("completed_at", "Completed", DATETIME, _completed_at),
    Column("total_annotations", "Annotations", NUMBER, _field("total_annotations"), integer=True),
    Column("cancelled_annotations", "Cancelled", NUMBER, _field("cancelled_annotations"), integer=True),
    Column("total_predictions", "Predictions", NUMBER, _field("total_predictions"), integer=True),
    Column("is_labeled", "Labeled", BOOLEAN, _field("is_labeled")),
    Column("annotators", "Annotated by", LIST, operators=_PEOPLE_OPERATORS, orderable=False,
           match=_people_match(done_by=_annotated_by, assignment_type=TaskAssignment.Type.ANNOTATE)),
    Column("annotations_results", "Annotation results", STRING, operators=_RESULTS_OPERATORS, orderable=False,
           match=_results_match(Annotation)),
    Column("ground_truth", "Ground truth", BOOLEAN, lambda seen: Exists(seen.annotations(ground_truth=True))),
    Column("predictions_score", "Prediction score", NUMBER, _predictions_score),
    Column("predictions_model_versions", "Prediction model versions", STRING, orderable=False,
           operators=_MODEL_VERSION_OPERATORS, match=_model_versions_match),
    Column("predictions_results", "Prediction results", STRING, operators=_RESULTS_OPERATORS, orderable=False,
           match=_results_match(Prediction)),
    Column("file_upload", "Upload filename", STRING, _file_upload_name),
    Column("created_at", "Created at", DATETIME, _field("created_at")),
    Column("updated_at", "Updated at", DATETIME, _field("updated_at")),
    Column("comments", "Comments", NUMBER, _field("comment_count"), integer=True),
    Column("unresolved_comment_count", "Unresolved comments", NUMBER, _field("unresolved_comment_count"),
           integer=True),
    Column("reviewed", "Reviewed", BOOLEAN, lambda seen: Exists(seen.reviews())),
    Column("reviews_accepted", "Reviews accepted", NUMBER, lambda seen: _reviews_count(seen, True), integer=True),
    Column("reviews_rejected", "Reviews rejected", NUMBER, lambda seen: _reviews_count(seen, False), integer=True),
    Column("reviewers", "Reviewed by", LIST, operators=_PEOPLE_OPERATORS, orderable=False,
           match=_people_match(done_by=_reviewed_by, assignment_type=TaskAssignment.Type.REVIEW)),
]
COLUMNS = {column.id: column for column in _COLUMN_LIST}
_COLUMN_ALIASES = {"comment_count": "comments"}


def _data_column(key: str, value_type: str | None) -> Column:
    """A task-data column; the filter's own type says how to read the value."""
    if not key:
        raise _ItemError("a data column needs a key: data.<key>")
    title = key
    if value_type == NUMBER:
        return Column(f"data.{key}", title, NUMBER, lambda seen: _data_number(key))
    if value_type == BOOLEAN:
        return Column(f"data.{key}", title, BOOLEAN, lambda seen: _DataKey(key, text=False))
    if value_type == DATETIME:
        # Compared as ISO text: a data value that is no date must not make the query fail.
        return Column(f"data.{key}", title, DATETIME, lambda seen: _DataKey(key, text=True),
                      coerce=lambda value: _datetime(value).isoformat())
    if value_type == LIST:
        return Column(f"data.{key}", title, LIST, lambda seen: _DataKey(key, text=False))
    return Column(f"data.{key}", title, STRING, lambda seen: _DataKey(key, text=True))


def _column_named(name, value_type: str | None = None) -> Column:
    if not isinstance(name, str) or not name:
        raise _ItemError("the filter needs a column name like 'filter:tasks:id'")
    bare = name.removeprefix("filter:").removeprefix("tasks:")
    if bare.startswith("data."):
        return _data_column(bare[len("data."):], value_type)
    column = COLUMNS.get(_COLUMN_ALIASES.get(bare, bare))
    if column is None:
        raise _ItemError(f"unknown column {bare!r}")
    return column


# --- filters -----------------------------------------------------------------------------------

_COERCE = {NUMBER: _number, DATETIME: _datetime, STRING: _text, BOOLEAN: _boolean, LIST: lambda value: value}


def _scalar_condition(alias: str, column: Column, operator: str, value) -> Q:
    if operator == "empty":
        empty = Q(**{f"{alias}__isnull": True})
        if column.type == STRING:
            empty |= Q(**{alias: ""})
        return empty if _boolean(value) else ~empty
    coerce = column.coerce or _COERCE[column.type]
    if column.type == NUMBER and column.integer:
        def coerce(raw):  # integer columns take exact integers; other numbers go through numeric
            return _integral_or_decimal(_number(raw))
    if operator in _RANGES:
        if not isinstance(value, dict) or (value.get("min") is None and value.get("max") is None):
            raise _ItemError(f"value must be {{\"min\": ..., \"max\": ...}} for '{operator}', got {value!r}")
        condition = Q()
        if value.get("min") is not None:
            condition &= Q(**{f"{alias}__gte": coerce(value["min"])})
        if value.get("max") is not None:
            condition &= Q(**{f"{alias}__lte": coerce(value["max"])})
    elif operator in _LISTS:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise _ItemError(f"value must be a non-empty list for '{operator}'")
        condition = Q(**{f"{alias}__in": [coerce(one) for one in values]})
    elif operator in _COMPARISONS:
        condition = Q(**{f"{alias}__{_COMPARISONS[operator]}": coerce(value)})
    elif column.type == LIST:  # contains on a JSON array in task data
        condition = Q(**{f"{alias}__contains": value if isinstance(value, list) else [value]})
    else:
        condition = Q(**{f"{alias}__{_TEXT_MATCHES[operator]}": _text(value)})
    if operator in _NEGATED:
        condition = ~condition | Q(**{f"{alias}__isnull": True})
    return condition


def _needs_numeric(column: Column, value) -> bool:
    """An integer column compared with a fraction is compared as numeric (no truncation)."""
    if not (column.type == NUMBER and column.integer):
        return False
    raw = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return any(isinstance(_integral_or_decimal(_number(one)), Decimal) for one in raw if one is not None)


def _item_condition(index: int, item, regexes: list[str], seen: Seen) -> tuple[dict, Q]:
    if not isinstance(item, dict):
        raise _ItemError("each item must be an object with filter, operator, type and value")
    value_type = item.get("type")
    column = _column_named(item.get("filter"), value_type if isinstance(value_type, str) else None)
    operator = item.get("operator")
    allowed = column.allowed_operators() + (DATA_KEY_OPERATORS if column.id.startswith("data.") else ())
    if operator not in allowed:
        raise _ItemError(f"unknown operator {operator!r} for column {column.id!r}; use one of {', '.join(allowed)}")
    if "value" not in item and operator not in DATA_KEY_OPERATORS:
        raise _ItemError("value is required")
    value = item.get("value")
    if value is None and operator not in DATA_KEY_OPERATORS:
        return {}, Q()  # the DM saves a filter while its value is still being typed: it keeps every task
    if operator in DATA_KEY_OPERATORS:
        has_key = Q(data__has_key=column.id[len("data."):])
        return {}, has_key if operator == "exists" else ~has_key
    if operator == "regex":
        regexes.append(_text(value))
    if column.match is not None:
        return {}, column.match(seen, operator, value)
    alias = f"_dm_filter_{index}"
    expression = column.expression(seen)
    if operator != "empty" and _needs_numeric(column, value):
        expression = _Numeric(expression)
        column = Column(column.id, column.title, NUMBER, coerce=_number)
    return {alias: expression}, _scalar_condition(alias, column, operator, value)


def _as_object(value, *, field: str):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValidationError({field: "Must be a JSON object."}) from None
    return value


def compile_filters(filters, *, seen: Seen = EVERYONE) -> tuple[dict, Q]:
    """LS's filter JSON as (aliases for the queryset, condition). 400 names every bad item."""
    filters = _as_object(filters, field="filters")
    if filters in (None, {}):
        return {}, Q()
    if not isinstance(filters, dict):
        raise ValidationError({"filters": 'Must be an object: {"conjunction": "and", "items": [...]}.'})
    conjunction = str(filters.get("conjunction") or "and").lower()
    if conjunction not in ("and", "or"):
        raise ValidationError({"filters": f"Unknown conjunction {filters.get('conjunction')!r}; use 'and' or 'or'."})
    items = filters.get("items") or []
    if not isinstance(items, list):
        raise ValidationError({"filters": "'items' must be a list of filter items."})
    aliases: dict = {}
    combined = Q()
    errors: list[str] = []
    regexes: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        label = item.get("filter") if isinstance(item, dict) else None
        item_regexes: list[str] = []
        try:
            item_aliases, condition = _item_condition(index, item, item_regexes, seen)
        except _ItemError as exc:
            errors.append(f"items[{index}] ({label}): {exc}.")
            continue
        regexes += [(index, pattern) for pattern in item_regexes]
        aliases.update(item_aliases)
        combined = (combined & condition) if conjunction == "and" else (combined | condition)
    for index, pattern in regexes:
        if problem := _invalid_regex(pattern):
            errors.append(f"items[{index}] ({items[index].get('filter')}): invalid regular expression: {problem}.")
    if errors:
        raise ValidationError({"filters": errors})
    return aliases, combined


def _normalized_filters(filters) -> dict | None:
    filters = _as_object(filters, field="filters")
    if not filters or not filters.get("items"):
        return None
    return {"conjunction": str(filters.get("conjunction") or "and").lower(), "items": filters["items"]}


# --- ordering ----------------------------------------------------------------------------------

def compile_ordering(ordering, *, seen: Seen = EVERYONE) -> tuple[dict, list]:
    """LS's ordering (["-tasks:total_annotations"], ["tasks:data.city"]) as (aliases, order_by).
    Ties are broken by id, so pages never overlap."""
    if ordering in (None, "", []):
        return {}, ["id"]
    if isinstance(ordering, str):
        ordering = [ordering]
    if not isinstance(ordering, list):
        raise ValidationError({"ordering": 'Must be a list like ["tasks:id"] or ["-tasks:total_annotations"].'})
    aliases: dict = {}
    order_by: list = []
    errors = []
    for index, name in enumerate(ordering):
        if not isinstance(name, str) or not name.lstrip("-"):
            errors.append(f"ordering[{index}]: must be a column name like 'tasks:id', got {name!r}.")
            continue
        descending = name.startswith("-")
        bare = name.lstrip("-").removeprefix("filter:").removeprefix("tasks:")
        if bare.startswith("data."):
            if not bare[len("data."):]:
                errors.append(f"ordering[{index}] ({name}): a data column needs a key: data.<key>.")
                continue
            # Numbers (and numeric strings, as CSV imports store them) by value, then other text.
            key = bare[len("data."):]
            aliases[f"_dm_order_{index}_number"] = _data_number(key)
            order_by.append(F(f"_dm_order_{index}_number").desc(nulls_last=True) if descending
                            else F(f"_dm_order_{index}_number").asc(nulls_last=True))
            expression = _DataKey(key, text=True)
        else:
            column = COLUMNS.get(_COLUMN_ALIASES.get(bare, bare))
            if column is None:
                errors.append(f"ordering[{index}] ({name}): unknown column {bare!r}.")
                continue
            if not column.orderable:
                errors.append(f"ordering[{index}] ({name}): column {bare!r} cannot be used for ordering.")
                continue
            expression = column.expression(seen)
        alias = f"_dm_order_{index}"
        aliases[alias] = expression
        order_by.append(F(alias).desc(nulls_last=True) if descending else F(alias).asc(nulls_last=True))
    if errors:
        raise ValidationError({"ordering": errors})
    return aliases, order_by + ["id"]


# --- selection ---------------------------------------------------------------------------------

def selection_condition(selected_items) -> Q:
    """selectedItems: {"all": true, "excluded": [...]} or {"all": false, "included": [...]}."""
    selected_items = _as_object(selected_items, field="selectedItems")
    if selected_items in (None, {}):
        return Q()
    if not isinstance(selected_items, dict) or "all" not in selected_items:
        raise ValidationError({"selectedItems": 'Must be {"all": true, "excluded": [...]} '
                                                'or {"all": false, "included": [...]}.'})
    everything = selected_items["all"]
    if isinstance(everything, str):
        everything = everything.strip().lower() == "true"
    if everything:
        excluded = _ids(selected_items.get("excluded") or [], field="excluded")
        return ~Q(pk__in=excluded) if excluded else Q()
    return Q(pk__in=_ids(selected_items.get("included") or [], field="included"))


def parse_query(raw: str | None) -> dict:
    """The `query` parameter of /api/tasks/: a JSON object with filters, ordering, selectedItems."""
    if raw in (None, ""):
        return {}
    try:
        query = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError({"query": f"Must be a JSON object; not valid JSON: {exc.msg} "
                                        f"(position {exc.pos})."}) from None
    if not isinstance(query, dict):
        raise ValidationError({"query": 'Must be a JSON object like {"filters": ..., "ordering": [...], '
                                        '"selectedItems": ...}.'})
    return query


def tasks_query(*, project: Project, filters=None, ordering=None, selected_items=None,
                only_annotated: bool = False, annotations_of_user: int | None = None) -> QuerySet[Task]:
    """A project's tasks as the DM shows them: filtered, selected and ordered. No query runs here.
    `annotations_of_user`: filters and ordering look only at that user's annotations (a caller
    the project hides other people's work from; labeling.api.own_annotations_only)."""
    seen = Seen(annotations_of_user=annotations_of_user)
    filter_aliases, condition = compile_filters(filters, seen=seen)
    order_aliases, order_by = compile_ordering(ordering, seen=seen)
    selection = selection_condition(selected_items)
    queryset = selectors.tasks_of(project=project, only_annotated=only_annotated)
    return queryset.alias(**filter_aliases, **order_aliases).filter(condition, selection).order_by(*order_by)


def view_query(view: DataManagerView) -> dict:
    """A view's saved filters and ordering, as `tasks_query` takes them."""
    data = view.data or {}
    return {"filters": view.filter_group or data.get("filters"), "ordering": view.ordering or data.get("ordering")}


# --- views -------------------------------------------------------------------------------------

def _checked_view_fields(*, data, ordering, selected_items) -> dict:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError({"data": "Must be an object (title, filters, ordering, hiddenColumns, ...)."})
    filters = data.get("filters")
    compile_filters(filters)
    if ordering is None:
        ordering = data.get("ordering")
    compile_ordering(ordering)
    if isinstance(ordering, str):
        ordering = [ordering]
    selection_condition(selected_items)
    data = {**data, "ordering": ordering or []}
    return {"data": data, "filter_group": _normalized_filters(filters), "ordering": ordering or [],
            "selected_items": _as_object(selected_items, field="selectedItems")}


@transaction.atomic
def view_create(*, project: Project, user, data=None, ordering=None, selected_items=None,
                order: int | None = None) -> DataManagerView:
    fields = _checked_view_fields(data=data, ordering=ordering, selected_items=selected_items)
    if order is None:
        last = DataManagerView.objects.filter(project=project, order__isnull=False).order_by("-order").first()
        order = last.order + 1 if last else 0
    return DataManagerView.objects.create(project=project, user=user, order=order, **fields)


@transaction.atomic
def view_update(*, view: DataManagerView, data=None, ordering=None, selected_items=None,
                order: int | None = None) -> DataManagerView:
    """`data` replaces the view's data (the DM always sends all of it); other fields change when given."""
    if ordering is None and data is None:
        ordering = view.ordering
    fields = _checked_view_fields(
        data=data if data is not None else view.data, ordering=ordering,
        selected_items=selected_items if selected_items is not None else view.selected_items,
    )
    for name, value in fields.items():
        setattr(view, name, value)
    if order is not None:
        view.order = order
    view.save()
    return view


def view_delete(*, view: DataManagerView) -> None:
    view.delete()


@transaction.atomic
def views_reorder(*, project: Project, ids: list[int]) -> None:
    views = {view.pk: view for view in DataManagerView.objects.select_for_update().filter(project=project)}
    unknown = [pk for pk in ids if pk not in views]
    if unknown:
        raise ValidationError({"ids": f"Not views of project {project.pk}: {unknown[:20]}."})
    for position, pk in enumerate(ids):
        views[pk].order = position
    DataManagerView.objects.bulk_update([views[pk] for pk in ids], ["order"])


def views_reset(*, project: Project) -> int:
    deleted, _ = DataManagerView.objects.filter(project=project).delete()
    return deleted


def views_of(*, project_id: int | None) -> QuerySet[DataManagerView]:
    queryset = DataManagerView.objects.order_by("order", "id")
    return queryset.filter(project_id=project_id) if project_id is not None else queryset


def view_payload(view: DataManagerView) -> dict:
    """LS's View: the filters also as a filter group (LS stores them as rows)."""
    group = view.filter_group
    filter_group = None
    if group:
        filter_group = {"id": view.pk, "conjunction": group["conjunction"], "filters": [
            {"id": index + 1, "index": index, "column": item.get("filter"), "type": item.get("type"),
             "operator": item.get("operator"), "value": item.get("value"), "parent": None, "child_filters": []}
            for index, item in enumerate(group["items"])
        ]}
    return {"id": view.pk, "project": view.project_id, "user": view.user_id, "data": view.data or {},
            "filter_group": filter_group, "ordering": view.ordering or [], "selected_items": view.selected_items,
            "order": view.order}


# --- actions -----------------------------------------------------------------------------------

def _delete_tasks(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    deleted = services.tasks_delete(project=project, task_ids=task_ids)
    return {"processed_items": deleted, "reload": True, "detail": f"Deleted {deleted} tasks."}


def _delete_annotations(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    # Counted first: the bulk delete's own count includes what cascades (drafts, comments, reviews).
    count = Annotation.objects.filter(project=project, task_id__in=task_ids).count()
    services.annotations_bulk_delete(project=project, task_ids=task_ids)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM labeling_annotationdraft WHERE task_id = ANY(%s)", [task_ids])
    return {"processed_items": count, "detail": f"Deleted {count} annotations."}


def _delete_predictions(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    deleted = services.predictions_delete(project=project, task_ids=task_ids)
    return {"processed_items": deleted, "detail": f"Deleted {deleted} predictions."}


_PREDICTIONS_TO_ANNOTATIONS_SQL = """
INSERT INTO labeling_annotation (task_id, project_id, result, completed_by_id, updated_by_id, was_cancelled,
    ground_truth, parent_prediction_id, last_action, created_at, updated_at)
SELECT DISTINCT ON (p.task_id) p.task_id, p.project_id, p.result, %(user)s, %(user)s, false, false, p.id,
    'prediction', now(), now()
FROM labeling_prediction p
WHERE p.project_id = %(project)s AND p.task_id = ANY(%(tasks)s)
  AND (%(any_version)s OR p.model_version = ANY(%(versions)s))
ORDER BY p.task_id, p.created_at DESC, p.id DESC
RETURNING id, task_id
"""


def _model_versions_param(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(one, str) for one in value):
        return value
    raise ValidationError({"model_version": "Must be a model version or a list of them."})


def _predictions_to_annotations(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    """One annotation per task from its latest prediction (of the given model versions), by the caller."""
    versions = _model_versions_param(params.get("model_version"))
    with connection.cursor() as cursor:
        cursor.execute(_PREDICTIONS_TO_ANNOTATIONS_SQL, {
            "user": user.pk, "project": project.pk, "tasks": task_ids,
            "any_version": versions is None, "versions": versions or [],
        })
        rows = cursor.fetchall()
    # Counted after the insert (only then is the number known): past the limit, the action rolls back.
    billing_limits.take(organization_id=connection.tenant.pk, counted="results", count=len(rows))
    annotation_ids, annotated = [row[0] for row in rows], [row[1] for row in rows]
    services._refresh_task_counters(annotated)
    webhooks.emit(project_id=project.pk, action="ANNOTATIONS_CREATED",
                  payload_factory=lambda: webhooks.annotations_created_event(project, annotation_ids))
    return {"processed_items": len(annotated), "detail": f"Created {len(annotated)} annotations."}


def _delete_ground_truths(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labeling_annotation SET ground_truth = false, updated_at = now() "
            "WHERE project_id = %s AND task_id = ANY(%s) AND ground_truth", [project.pk, task_ids],
        )
        changed = cursor.rowcount
    return {"processed_items": changed, "detail": f"Removed ground truth from {changed} annotations."}


def _delete_assignments(assignment_type: str, who: str):
    def run(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM labeling_taskassignment WHERE task_id = ANY(%s) AND type = %s",
                           [task_ids, assignment_type])
            deleted = cursor.rowcount
        return {"processed_items": deleted, "detail": f"Removed {deleted} {who} assignments."}
    return run


def _delete_reviews(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM labeling_annotationreview WHERE annotation_id IN "
            "(SELECT id FROM labeling_annotation WHERE project_id = %s AND task_id = ANY(%s))",
            [project.pk, task_ids],
        )
        deleted = cursor.rowcount
    return {"processed_items": deleted, "detail": f"Deleted {deleted} reviews."}


_DUPLICATES_SQL = """
SELECT id, keep FROM (
    SELECT id, min(id) OVER (PARTITION BY data) AS keep
    FROM labeling_task WHERE project_id = %s AND id = ANY(%s)
) grouped WHERE id <> keep
"""


def _remove_duplicates(*, project: Project, user, task_ids: list[int], params: dict) -> dict:
    """Tasks with identical data keep the first; the others' annotations move to it (no work lost)."""
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATES_SQL, [project.pk, task_ids])
        pairs = cursor.fetchall()
        if not pairs:
            return {"processed_items": 0, "reload": True, "detail": "No duplicated tasks."}
        duplicates, keepers = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        moved = "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS m(duplicate, keep)"
        cursor.execute(
            f"UPDATE labeling_comment c SET task_id = m.keep FROM ({moved}) m "  # noqa: S608 - fixed text
            "WHERE c.task_id = m.duplicate AND c.annotation_id IS NOT NULL", [duplicates, keepers],
        )
        cursor.execute(
            f"UPDATE labeling_annotation a SET task_id = m.keep FROM ({moved}) m "  # noqa: S608 - fixed text
            "WHERE a.task_id = m.duplicate", [duplicates, keepers],
        )
    services.tasks_delete(project=project, task_ids=duplicates)
    services._refresh_task_counters(sorted(set(keepers)))
    return {"processed_items": len(duplicates), "reload": True,
            "detail": f"Removed {len(duplicates)} duplicated tasks."}


def _model_versions_form(project: Project) -> list:
    versions = list(Prediction.objects.filter(project=project).exclude(model_version="").order_by("model_version")
                    .values_list("model_version", flat=True).distinct()[:200])
    return [{"columnCount": 1, "fields": [{
        "type": "select", "name": "model_version", "label": "Model version (all when none is chosen)",
        "options": versions, "multiple": True,
    }]}]


@dataclass(frozen=True)
class Action:
    id: str
    title: str
    order: int
    permission: str
    text: str
    run: Callable[..., dict]
    form: Callable[[Project], list] | None = None
    experimental: bool = False

    def payload(self, project: Project) -> dict:
        return {"id": self.id, "title": self.title, "order": self.order, "permission": self.permission,
                "experimental": self.experimental,
                "dialog": {"title": self.title, "text": self.text, "type": "confirm",
                           "form": self.form(project) if self.form else None}}


ACTIONS = {action.id: action for action in [
    Action("predictions_to_annotations", "Create Annotations From Predictions", 91, "tasks.change",
           "Each selected task gets an annotation copied from its latest prediction; you are its author.",
           _predictions_to_annotations, form=_model_versions_form),
    Action("remove_duplicates", "Remove Duplicated Tasks", 95, "tasks.delete",
           "Tasks with identical data keep the first one; annotations of the others move to it.",
           _remove_duplicates),
    Action("delete_tasks", "Delete Tasks", 100, "tasks.delete",
           "The selected tasks and their annotations, predictions and comments are deleted for good.",
           _delete_tasks),
    Action("delete_tasks_annotations", "Delete Annotations", 101, "tasks.delete",
           "Every annotation and draft of the selected tasks is deleted for good.", _delete_annotations),
    Action("delete_tasks_predictions", "Delete Predictions", 102, "predictions.change",
           "Every prediction of the selected tasks is deleted for good.", _delete_predictions),
    Action("delete_tasks_reviews", "Delete Reviews", 103, "tasks.delete",
           "Every review of the selected tasks' annotations is deleted for good.", _delete_reviews),
    Action("delete_ground_truths", "Delete Ground Truths", 104, "tasks.change",
           "Annotations of the selected tasks stop being ground truth.", _delete_ground_truths),
    Action("delete_annotators", "Unassign Annotators", 105, "tasks.change",
           "Annotator assignments of the selected tasks are removed.",
           _delete_assignments(TaskAssignment.Type.ANNOTATE, "annotator")),
    Action("delete_reviewers", "Unassign Reviewers", 106, "tasks.change",
           "Reviewer assignments of the selected tasks are removed.",
           _delete_assignments(TaskAssignment.Type.REVIEW, "reviewer")),
]}


def action_get(action_id: str) -> Action:
    action = ACTIONS.get(action_id or "")
    if action is None:
        raise ValidationError({"id": f"Unknown action {action_id!r}; available: {', '.join(ACTIONS)}."})
    return action


def selected_task_ids(*, project: Project, selected_items, filters=None, ordering=None,
                      annotations_of_user: int | None = None) -> list[int]:
    """The ids, in id order, of the tasks a bulk operation acts on: `selectedItems` within `filters`
    (`annotations_of_user` as in `tasks_query`). The selection is required: an empty body must
    never mean every task."""
    if selected_items in (None, "", {}):
        raise ValidationError({"selectedItems": 'Required: {"all": true, "excluded": []} selects every task '
                                                'the filters keep; {"all": false, "included": [ids]} some.'})
    # `ordering` is checked like the data manager's, though bulk work always goes in id order.
    queryset = tasks_query(project=project, filters=filters, ordering=ordering, selected_items=selected_items,
                           annotations_of_user=annotations_of_user)
    return list(queryset.order_by("id").values_list("id", flat=True))


def action_run(*, action_id: str, project: Project, user, filters=None, ordering=None, selected_items=None,
               params: dict | None = None, annotations_of_user: int | None = None) -> dict:
    """Run a DM action on the selected tasks: bulk statements in one transaction. The caller
    checked the action's permission (`action_get(action_id).permission`)."""
    action = action_get(action_id)
    with transaction.atomic():
        task_ids = selected_task_ids(project=project, filters=filters, ordering=ordering,
                                     selected_items=selected_items, annotations_of_user=annotations_of_user)
        if not task_ids:
            return {"processed_items": 0, "detail": "No tasks selected."}
        return action.run(project=project, user=user, task_ids=task_ids, params=params or {})


# --- the DM's project state --------------------------------------------------------------------

_DATA_KEYS_SQL = """
SELECT DISTINCT key FROM (
    SELECT data FROM labeling_task WHERE project_id = %s AND jsonb_typeof(data) = 'object' ORDER BY id LIMIT 1000
) sample, jsonb_object_keys(sample.data) AS key
ORDER BY key LIMIT 500
"""


def _config_data_types(project: Project) -> dict[str, str]:
    types: dict[str, str] = {}
    for control in (project.parsed_label_config or {}).values():
        for source in control.get("inputs", []):
            key = source.get("value") or source.get("valueList")
            if isinstance(key, str) and key:
                types.setdefault(key, source.get("type") or STRING)
    return types


def _column_payload(column: Column, *, parent: str | None = None) -> dict:
    return {"id": column.id, "title": column.title, "type": column.type, "target": "tasks", "parent": parent,
            "orderable": column.orderable, "filterable": True, "operators": list(column.allowed_operators())}


def project_state(*, project: Project, may: Callable[[str], bool]) -> dict:
    """What the DM needs to draw a project: counters, columns (task-data keys sampled in SQL),
    filter operators, views, and the actions the caller `may` run (a permission key -> bool)."""
    totals = Task.objects.filter(project=project).aggregate(
        tasks=Count("id"), annotations=Sum("total_annotations"), predictions=Sum("total_predictions"))
    with connection.cursor() as cursor:
        cursor.execute(_DATA_KEYS_SQL, [project.pk])
        sampled = [row[0] for row in cursor.fetchall()]
    data_types = _config_data_types(project)
    data_keys = sorted(key for key in set(sampled) | set(data_types) if key)
    data_children = [f"data.{key}" for key in data_keys]
    columns = [_column_payload(column) for column in _COLUMN_LIST]
    columns.append({"id": "data", "title": "data", "type": LIST, "target": "tasks", "children": data_children,
                    "orderable": False, "filterable": False})
    for key in data_keys:
        columns.append({**_column_payload(_data_column(key, None), parent="data"),
                        "type": data_types.get(key, "Unknown"),
                        "operators": list(OPERATORS[STRING] + DATA_KEY_OPERATORS)})
    return {
        "id": project.pk, "title": project.title,
        "task_count": totals["tasks"], "annotation_count": totals["annotations"] or 0,
        "prediction_count": totals["predictions"] or 0,
        "data_types": data_types, "common_data_columns": data_keys,
        "columns": columns,
        "filters": {"conjunctions": ["and", "or"], "operators": {kind: list(ops) for kind, ops in OPERATORS.items()},
                    "data_key_operators": list(DATA_KEY_OPERATORS)},
        "ordering": [f"tasks:{column.id}" for column in _COLUMN_LIST if column.orderable] + ["tasks:data.<key>"],
        "views": [view_payload(view) for view in views_of(project_id=project.pk)],
        "actions": [action.payload(project) for action in ACTIONS.values() if may(action.permission)],
        "can_delete_tasks": may("tasks.delete"), "can_manage_annotations": may("annotations.change_any"),
        "can_manage_tasks": may("tasks.change"),
        "source_syncing": False, "target_syncing": False,
        "config_has_control_tags": bool(project.parsed_label_config),
    }
