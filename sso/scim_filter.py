"""SCIM filters and attribute paths (RFC 7644 sections 3.4.2.2 and 3.5.2), the subset we serve.

`parse_filter` reads a filter into a small tree; `filter_to_q` turns it into a Django Q for the
list endpoints (only the attributes a resource declares filterable: anything else is an
`invalidFilter`); `element_matches` evaluates it on one value of a multi-valued attribute, for
PATCH paths like `emails[type eq "work"].value`. `parse_path` reads such a PATCH path.

Supported: the operators `eq`, `co`, `sw`, `pr`, the logical `and` / `or` (and binds tighter),
parentheses, case-insensitive attribute names and operators, and attribute names prefixed by the
resource's schema URN.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.db.models import BooleanField, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.db.models.lookups import Exact

SUPPORTED_OPERATORS = ("eq", "co", "sw")
KNOWN_OPERATORS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
MAX_FILTER_LENGTH = 2000
MAX_DEPTH = 20


class FilterError(ValueError):
    """The filter or path cannot be read or asks for something we do not serve."""


@dataclass(frozen=True)
class AttrPath:
    """`name` or `name.sub`, names lowercased; `foreign` when prefixed by another schema's URN
    (an extension we do not serve)."""

    name: str
    sub: str | None = None
    foreign: bool = False

    @property
    def dotted(self) -> str:
        return f"{self.name}.{self.sub}" if self.sub else self.name


@dataclass(frozen=True)
class Comparison:
    path: AttrPath
    operator: str
    value: str | bool | int | float | None


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class Logical:
    operator: str  # "and" | "or"
    left: Node
    right: Node


Node = Comparison | Present | Logical


@dataclass(frozen=True)
class ValuePath:
    """A PATCH path: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`."""

    attribute: AttrPath
    value_filter: Node | None = None
    sub: str | None = None


# --- reading ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<paren>[()\[\]])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]"]+))')
_NAME = re.compile(r"^\$?[A-Za-z][\w$-]*$")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].isspace():
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"Unexpected character at position {position + 1}: {text[position:position + 20]!r}.")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _attr_path(word: str, *, schema_urn: str) -> AttrPath:
    """`userName`, `name.givenName`, `urn:...:User:userName`; the URN's own dots ("2.0") are not
    sub-attribute separators."""
    foreign = False
    if word.lower().startswith("urn:"):
        if word.lower().startswith(schema_urn.lower() + ":"):
            word = word[len(schema_urn) + 1:]
        else:
            foreign = True
            word = word.rpartition(":")[2]
    name, _, sub = word.partition(".")
    if not _NAME.match(name) or (sub and not _NAME.match(sub)) or "." in sub:
        raise FilterError(f"{word!r} is not an attribute path.")
    return AttrPath(name=name.lower(), sub=sub.lower() or None, foreign=foreign)


def _value(kind: str, token: str):
    if kind == "string":
        try:
            return json.loads(token)
        except ValueError:
            raise FilterError(f"Bad string {token}.") from None
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(token) if re.fullmatch(r"-?\d+", token) else float(token)
    except ValueError:
        raise FilterError(f"Expected a value (a quoted string, true, false, null or a number), got {token!r}.") \
            from None


class _Parser:
    def __init__(self, text: str, *, schema_urn: str):
        if len(text) > MAX_FILTER_LENGTH:
            raise FilterError(f"A filter has at most {MAX_FILTER_LENGTH} characters.")
        self.tokens = _tokens(text)
        self.position = 0
        self.schema_urn = schema_urn
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("The filter ends too early.")
        self.position += 1
        return token

    def expect(self, paren: str) -> None:
        kind, token = self.take()
        if kind != "paren" or token != paren:
            raise FilterError(f"Expected {paren!r}, got {token!r}.")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.position += 1
            return True
        return False

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"Filters nest at most {MAX_DEPTH} levels deep.")
        node = self.conjunction()
        while self.keyword("or"):
            node = Logical("or", node, self.conjunction())
        self.depth -= 1
        return node

    def conjunction(self) -> Node:
        node = self.atom()
        while self.keyword("and"):
            node = Logical("and", node, self.atom())
        return node

    def atom(self) -> Node:
        kind, token = self.take()
        if kind == "paren" and token == "(":
            node = self.expression()
            self.expect(")")
            return node
        if kind != "word":
            raise FilterError(f"Expected an attribute, got {token!r}.")
        if token.lower() == "not":
            raise FilterError("'not' is not supported; use eq, co, sw, pr with and, or.")
        path = _attr_path(token, schema_urn=self.schema_urn)
        following = self.peek()
        if following == ("paren", "["):
            raise FilterError("Value filters (attr[...]) are not supported in a list filter; "
                              "use attr.sub, e.g. emails.value.")
        operator_kind, operator = self.take()
        operator = operator.lower()
        if operator_kind != "word" or (operator not in KNOWN_OPERATORS and operator != "pr"):
            raise FilterError(f"Expected an operator after {token!r}, got {operator!r}.")
        if operator == "pr":
            return Present(path)
        if operator not in SUPPORTED_OPERATORS:
            raise FilterError(f"The operator {operator!r} is not supported; use eq, co, sw or pr.")
        value_kind, value = self.take()
        if value_kind == "paren":
            raise FilterError(f"Expected a value after {operator!r}, got {value!r}.")
        return Comparison(path, operator, _value(value_kind, value))

    def finish(self, node: Node) -> Node:
        token = self.peek()
        if token is not None:
            raise FilterError(f"Unexpected {token[1]!r} after the end of the filter.")
        return node


def parse_filter(text: str, *, schema_urn: str) -> Node:
    """The filter tree, or FilterError."""
    if not text or not text.strip():
        raise FilterError("The filter is empty.")
    parser = _Parser(text, schema_urn=schema_urn)
    return parser.finish(parser.expression())


def parse_path(text: str, *, schema_urn: str) -> ValuePath:
    """A PATCH path, or FilterError."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError("The path is empty.")
    text = text.strip()
    if "[" not in text:
        return ValuePath(attribute=_attr_path(text, schema_urn=schema_urn))
    head, _, rest = text.partition("[")
    inner, closing, tail = rest.rpartition("]")
    if not closing:
        raise FilterError(f"{text!r}: '[' without ']'.")
    attribute = _attr_path(head, schema_urn=schema_urn)
    if attribute.sub:
        raise FilterError(f"{text!r}: a value filter follows an attribute, not a sub-attribute.")
    sub = None
    if tail:
        if not tail.startswith(".") or not _NAME.match(tail[1:]):
            raise FilterError(f"{text!r}: expected '.subAttribute' after ']'.")
        sub = tail[1:].lower()
    parser = _Parser(inner, schema_urn=schema_urn)
    return ValuePath(attribute=attribute, value_filter=parser.finish(parser.expression()), sub=sub)


# --- to SQL ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FilterField:
    """How one filterable attribute maps to the database.

    kind: "text" (a column; case_exact picks exact or case-insensitive lookups), "boolean" (a
    column), "id" (the primary key, given as a string), "json_values" (the JSON array of objects
    under `json_key` of the JSON `column`, compared on their "value" key, case-insensitively).
    `present` overrides `pr`.
    """

    column: str
    kind: str = "text"
    case_exact: bool = False
    json_key: str = ""
    present: Q | None = field(default=None, compare=False)


def _json_array_sql(spec: FilterField, *, table: str) -> str:
    # Names are ours (constants of sso/scim.py), never the client's.
    return f"(\"{table}\".\"{spec.column}\" -> '{spec.json_key}')"


def case_insensitive_equal(column: str, value: str) -> Q:
    """lower(column) = lower(value): unlike iexact's UPPER(), a Lower() index serves it."""
    return Q(Exact(Lower(column), Lower(Value(value))))


def _text_q(spec: FilterField, operator: str, value) -> Q:
    if not isinstance(value, str):
        raise FilterError(f"{spec.column}: compare with a quoted string.")
    if operator == "eq" and not spec.case_exact:
        return case_insensitive_equal(spec.column, value)
    lookup = {"eq": "exact", "co": "contains", "sw": "startswith"}[operator]
    if not spec.case_exact:
        lookup = "i" + lookup
    return Q(**{f"{spec.column}__{lookup}": value})


def _boolean_q(spec: FilterField, operator: str, value) -> Q:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if operator != "eq" or not isinstance(value, bool):
        raise FilterError("A boolean attribute is compared with eq true or eq false.")
    return Q(**{spec.column: value})


def _id_q(spec: FilterField, operator: str, value) -> Q:
    if operator != "eq" or not isinstance(value, str | int) or isinstance(value, bool):
        raise FilterError("id is compared with eq and a quoted id.")
    value = str(value)
    return Q(**{spec.column: int(value)}) if value.isdigit() and len(value) < 19 else Q(pk__in=[])


def _json_values_q(spec: FilterField, operator: str, value, *, table: str) -> Q:
    if not isinstance(value, str):
        raise FilterError("Compare email addresses with a quoted string.")
    condition = {
        "eq": "lower(item->>'value') = lower(%s)",
        "co": "strpos(lower(item->>'value'), lower(%s)) > 0",
        "sw": "starts_with(lower(item->>'value'), lower(%s))",
    }[operator]
    column = _json_array_sql(spec, table=table)
    sql = (f"EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({column}) = 'array' "  # noqa: S608
           f"THEN {column} ELSE '[]'::jsonb END) AS item WHERE {condition})")
    return Q(RawSQL(sql, [value], output_field=BooleanField()))  # noqa: S611 - fixed SQL, value as a parameter


def _present_q(spec: FilterField, *, table: str) -> Q:
    if spec.present is not None:
        return spec.present
    if spec.kind == "json_values":
        column = _json_array_sql(spec, table=table)
        sql = f"(jsonb_typeof({column}) = 'array' AND jsonb_array_length({column}) > 0)"
        return Q(RawSQL(sql, [], output_field=BooleanField()))  # noqa: S611 - fixed SQL
    if spec.kind == "text":
        return Q(**{f"{spec.column}__isnull": False}) & ~Q(**{spec.column: ""})
    return Q(**{f"{spec.column}__isnull": False})


def filter_to_q(node: Node, *, fields: dict[str, FilterField], table: str) -> Q:
    """The Q of a filter tree. `fields` maps lowercased attribute paths ("username",
    "emails.value") to their columns; any other attribute is a FilterError naming the ones we serve."""
    if isinstance(node, Logical):
        left = filter_to_q(node.left, fields=fields, table=table)
        right = filter_to_q(node.right, fields=fields, table=table)
        return left & right if node.operator == "and" else left | right
    spec = None if node.path.foreign else fields.get(node.path.dotted)
    if spec is None:
        raise FilterError(f"Filtering on {node.path.dotted!r} is not supported; filter on "
                          f"{', '.join(sorted({name for name in fields if name != 'emails'}))}.")
    if isinstance(node, Present):
        return _present_q(spec, table=table)
    if spec.kind == "boolean":
        return _boolean_q(spec, node.operator, node.value)
    if spec.kind == "id":
        return _id_q(spec, node.operator, node.value)
    if spec.kind == "json_values":
        return _json_values_q(spec, node.operator, node.value, table=table)
    return _text_q(spec, node.operator, node.value)


# --- on one value of a multi-valued attribute ----------------------------------------------------

def _element_value(element: dict, name: str):
    for key, value in element.items():
        if key.lower() == name:
            return value
    return None


def _compare(actual, operator: str, expected) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        if isinstance(expected, str) and expected.lower() in ("true", "false"):
            expected = expected.lower() == "true"
        return operator == "eq" and actual is expected
    if actual is None:
        return False
    actual, expected = str(actual).lower(), str(expected).lower()
    if operator == "eq":
        return actual == expected
    if operator == "co":
        return expected in actual
    return actual.startswith(expected)


def element_matches(node: Node, element: dict) -> bool:
    """Whether one value of a multi-valued attribute (a dict of sub-attributes) matches a value
    filter, whose attribute names are the sub-attributes (`type eq "work"`). Strings compare
    case-insensitively."""
    if isinstance(node, Logical):
        left = element_matches(node.left, element)
        if node.operator == "and":
            return left and element_matches(node.right, element)
        return left or element_matches(node.right, element)
    if node.path.sub:
        raise FilterError(f"{node.path.dotted!r}: a value filter names sub-attributes only.")
    actual = _element_value(element, node.path.name)
    if isinstance(node, Present):
        return actual not in (None, "", [], {})
    return _compare(actual, node.operator, node.value)


def equalities_of(node: Node) -> dict[str, object] | None:
    """The sub-attribute values a filter of only `eq` joined by `and` pins down (`type eq "work"`
    -> {"type": "work"}), or None: what a value that does not exist yet would be created with."""
    if isinstance(node, Comparison) and node.operator == "eq" and not node.path.sub:
        return {node.path.name: node.value}
    if isinstance(node, Logical) and node.operator == "and":
        left, right = equalities_of(node.left), equalities_of(node.right)
        if left is not None and right is not None:
            return {**left, **right}
    return None
