"""SCIM documents as the identity provider writes them, and RFC 7644 PATCH on them.

A resource's published schema (sso/scim.py builds it with scim2-models) is read into a
`ResourceSpec`; `document_clean` turns a POST or PUT body into a document with the schema's own
attribute names, values type-checked; `patch_apply` applies PatchOp operations to a stored
document and returns the new one. Both are pure: sso/scim.py decides what the result means.

Dialects served, besides RFC 7644 itself: Entra ID's capitalized `Add` / `Replace` / `Remove`,
its string booleans ("True", "False"), its `Remove` of `members` with a `value` list and its
`emails[type eq "work"].value` paths that create the value when it does not exist yet; Okta's
path-less `{"op": "replace", "value": {"active": false}}`.

Attributes outside the schema (Entra ID and Okta send titles, phone numbers, addresses, the
enterprise extension) are ignored: the answer shows what is kept. Read-only attributes (id, meta,
groups) are ignored in a body and refused as a PATCH target (`mutability`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sso.scim_filter import FilterError, ValuePath, element_matches, equalities_of, parse_path

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_OPERATIONS = 1000
MAX_VALUES = 10000
MAX_STRING = 2048
# Always present on a resource, never in its schema (RFC 7643 section 3.1).
COMMON_READ_ONLY = frozenset({"schemas", "id", "meta"})


class ScimError(Exception):
    """An answer in SCIM's error format (RFC 7644 section 3.12); the views render it."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


@dataclass(frozen=True)
class AttributeSpec:
    name: str  # as the schema spells it
    type: str  # string, boolean, complex, reference, integer, decimal, dateTime, binary
    multi_valued: bool = False
    mutability: str = "readWrite"
    required: bool = False
    sub_attributes: dict[str, AttributeSpec] = field(default_factory=dict)  # by lowercased name

    @property
    def read_only(self) -> bool:
        return self.mutability == "readOnly"

    @classmethod
    def of(cls, attribute) -> AttributeSpec:
        """From a scim2_models Attribute."""
        return cls(
            name=attribute.name, type=attribute.type.value, multi_valued=bool(attribute.multi_valued),
            mutability=attribute.mutability.value, required=bool(attribute.required),
            sub_attributes={sub.name.lower(): cls.of(sub) for sub in attribute.sub_attributes or []},
        )


@dataclass(frozen=True)
class ResourceSpec:
    schema_urn: str
    attributes: dict[str, AttributeSpec]  # by lowercased name, externalId included

    @classmethod
    def of(cls, schema) -> ResourceSpec:
        """From a scim2_models Schema, plus the common attribute externalId."""
        attributes = {attribute.name.lower(): AttributeSpec.of(attribute) for attribute in schema.attributes}
        attributes["externalid"] = AttributeSpec(name="externalId", type="string")
        return cls(schema_urn=str(schema.id), attributes=attributes)


# --- values --------------------------------------------------------------------------------------

def _clean_scalar(spec: AttributeSpec, value, *, label: str):
    if spec.type == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"  # Entra ID sends "True" / "False"
        if not isinstance(value, bool):
            raise invalid_value(f"{label} must be true or false.")
        return value
    if spec.type in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_value(f"{label} must be a number.")
        return value
    if not isinstance(value, str):
        raise invalid_value(f"{label} must be a string.")
    if len(value) > MAX_STRING:
        raise invalid_value(f"{label} has at most {MAX_STRING} characters.")
    return value


def _clean_complex(spec: AttributeSpec, value, *, label: str) -> dict:
    if not isinstance(value, dict):
        raise invalid_value(f"{label} must be an object.")
    cleaned = {}
    for key, item in value.items():
        sub = spec.sub_attributes.get(str(key).lower())
        if sub is None or item is None or sub.read_only:
            continue
        cleaned[sub.name] = _clean_scalar(sub, item, label=f"{label}.{sub.name}")
    return cleaned


def clean_value(spec: AttributeSpec, value, *, label: str | None = None, single: bool = False):
    """One attribute's value with the schema's sub-attribute names; None when unassigned. With
    `single`, one value of a multi-valued attribute."""
    label = label or spec.name
    if value is None:
        return None
    if spec.multi_valued and not single:
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_VALUES:
            raise invalid_value(f"{label} has at most {MAX_VALUES} values.")
        cleaned = [clean_value(spec, item, label=label, single=True) for item in items]
        cleaned = [item for item in cleaned if item not in (None, {})]
        return cleaned or None
    if spec.type == "complex":
        return _clean_complex(spec, value, label=label) or None
    return _clean_scalar(spec, value, label=label)


def _split_key(key: str, resource: ResourceSpec) -> tuple[str | None, str | None]:
    """A body's key: (attribute, sub-attribute) lowercased; (None, None) for another schema's."""
    lowered = key.lower()
    urn = resource.schema_urn.lower()
    if lowered.startswith(urn + ":"):
        lowered = lowered[len(urn) + 1:]
    elif lowered.startswith("urn:"):
        return None, None
    name, _, sub = lowered.partition(".")
    return name, sub or None


def document_clean(payload, *, resource: ResourceSpec) -> dict:
    """A POST or PUT body as a document: known attributes only, the schema's names, checked types."""
    if not isinstance(payload, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    document: dict = {}
    for key, value in payload.items():
        if not isinstance(key, str) or key.lower() in COMMON_READ_ONLY:
            continue
        name, sub = _split_key(key, resource)
        spec = resource.attributes.get(name) if name else None
        if spec is None or spec.read_only:
            continue
        if sub is not None:  # {"name.givenName": "Ada"}: allowed, as in path-less PATCH values
            sub_spec = spec.sub_attributes.get(sub)
            if sub_spec is None or spec.multi_valued or value is None:
                continue
            document.setdefault(spec.name, {})[sub_spec.name] = _clean_scalar(
                sub_spec, value, label=f"{spec.name}.{sub_spec.name}")
            continue
        cleaned = clean_value(spec, value)
        if cleaned is not None:
            if spec.type == "complex" and not spec.multi_valued:
                cleaned = {**document.get(spec.name, {}), **cleaned}
            document[spec.name] = cleaned
    return document


# --- PATCH ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    op: str  # add | replace | remove
    path: str | None
    value: object


def operations_parse(body) -> list[Operation]:
    """The operations of a PatchOp body; ops are case-insensitive (Entra ID capitalizes them)."""
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a PatchOp JSON object.", "invalidSyntax")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or PATCH_OP_SCHEMA not in schemas):
        raise ScimError(400, f"A PATCH body has the schema {PATCH_OP_SCHEMA}.", "invalidSyntax")
    raw = body.get("Operations", body.get("operations"))
    if not isinstance(raw, list) or not raw:
        raise ScimError(400, "A PATCH body has a non-empty 'Operations' list.", "invalidSyntax")
    if len(raw) > MAX_OPERATIONS:
        raise ScimError(400, f"At most {MAX_OPERATIONS} operations per PATCH.", "invalidSyntax")
    operations = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ScimError(400, f"Operation {position} must be an object.", "invalidSyntax")
        lowered = {str(key).lower(): value for key, value in item.items()}
        op = lowered.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise ScimError(400, f"Operation {position}: 'op' is add, replace or remove.", "invalidSyntax")
        path = lowered.get("path")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, f"Operation {position}: 'path' must be a string.", "invalidPath")
        if path is not None and not path.strip():
            path = None
        operations.append(Operation(op=op.lower(), path=path, value=lowered.get("value")))
    return operations


def _resolve(path: str, resource: ResourceSpec) -> tuple[ValuePath, AttributeSpec | None, AttributeSpec | None]:
    """The parsed path, its attribute (None: not ours, ignored) and sub-attribute."""
    try:
        parsed = parse_path(path, schema_urn=resource.schema_urn)
    except FilterError as exc:
        raise ScimError(400, f"Bad path {path!r}: {exc}", "invalidPath") from None
    if parsed.attribute.foreign:
        return parsed, None, None
    if parsed.attribute.name in COMMON_READ_ONLY:
        raise ScimError(400, f"{path!r} is read-only.", "mutability")
    spec = resource.attributes.get(parsed.attribute.name)
    if spec is None:
        return parsed, None, None
    if spec.read_only:
        raise ScimError(400, f"{spec.name} is read-only.", "mutability")
    sub_name = parsed.sub or parsed.attribute.sub
    if sub_name is None:
        return parsed, spec, None
    sub = spec.sub_attributes.get(sub_name)
    if spec.type != "complex":
        raise ScimError(400, f"{spec.name} has no sub-attributes.", "invalidPath")
    if parsed.value_filter is not None and not spec.multi_valued:
        raise ScimError(400, f"{spec.name} is single-valued: it takes no value filter.", "invalidPath")
    return parsed, spec, sub if sub is not None else AttributeSpec(name="", type="ignored")


def _matching(elements: list, parsed: ValuePath) -> list[int]:
    try:
        return [index for index, element in enumerate(elements)
                if isinstance(element, dict) and element_matches(parsed.value_filter, element)]
    except FilterError as exc:
        raise ScimError(400, f"Bad value filter: {exc}", "invalidPath") from None


def _set_primary_alone(elements: list, keep: set[int]) -> None:
    """RFC 7643 2.4: one value at most is primary; the one just written wins."""
    if any(elements[index].get("primary") is True for index in keep if index < len(elements)):
        for index, element in enumerate(elements):
            if index not in keep and element.get("primary") is True:
                element["primary"] = False


def _apply_whole(document: dict, op: str, spec: AttributeSpec, value) -> None:
    """`path` names the attribute itself."""
    if op == "remove":
        if value is not None and spec.multi_valued and spec.type == "complex":
            # Entra ID: {"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}.
            doomed = clean_value(spec, value) or []
            keys = {str(item.get("value", "")).lower() for item in doomed if isinstance(item, dict)}
            kept = [item for item in document.get(spec.name, []) if str(item.get("value", "")).lower() not in keys]
            document[spec.name] = kept
        else:
            document.pop(spec.name, None)
        return
    cleaned = clean_value(spec, value, label=spec.name)
    if cleaned is None:
        document.pop(spec.name, None) if op == "replace" else None
        return
    if spec.multi_valued:
        current = document.get(spec.name, []) if op == "add" else []
        added = [item for item in cleaned if item not in current]
        document[spec.name] = current + added
        if spec.type == "complex":
            _set_primary_alone(document[spec.name], set(range(len(current), len(document[spec.name]))))
    elif spec.type == "complex":
        # RFC 7644 3.5.2.1 and 3.5.2.3: the sub-attributes given replace theirs, the others stay.
        document[spec.name] = {**document.get(spec.name, {}), **cleaned}
    else:
        document[spec.name] = cleaned


def _apply_sub(document: dict, op: str, spec: AttributeSpec, sub: AttributeSpec, parsed: ValuePath, value) -> None:
    """`attr.sub`, or `attr[filter].sub`."""
    label = f"{spec.name}.{sub.name}"
    if not spec.multi_valued:
        current = dict(document.get(spec.name) or {})
        if op == "remove" or value is None:
            current.pop(sub.name, None)
        else:
            current[sub.name] = _clean_scalar(sub, value, label=label)
        if current:
            document[spec.name] = current
        else:
            document.pop(spec.name, None)
        return
    elements = [dict(element) for element in document.get(spec.name, [])]
    targets = _matching(elements, parsed) if parsed.value_filter is not None else list(range(len(elements)))
    if op == "remove" or value is None:
        for index in targets:
            elements[index].pop(sub.name, None)
        # A value that lost a required sub-attribute (an email without its address) goes.
        elements = [element for element in elements
                    if element and all(name in element for name, item in _required_subs(spec))]
    else:
        cleaned = _clean_scalar(sub, value, label=label)
        if not targets:
            # Entra ID writes emails[type eq "work"].value for a user who has no work email yet.
            seed = equalities_of(parsed.value_filter) if parsed.value_filter is not None else {}
            if seed is None:
                raise ScimError(400, f"No value of {spec.name} matches the path's filter.", "noTarget")
            element = clean_value(spec, seed, label=spec.name, single=True) or {}
            elements.append(element)
            targets = [len(elements) - 1]
        for index in targets:
            elements[index][sub.name] = cleaned
        _set_primary_alone(elements, set(targets))
    if elements:
        document[spec.name] = elements
    else:
        document.pop(spec.name, None)


def _required_subs(spec: AttributeSpec):
    return [(sub.name, sub) for sub in spec.sub_attributes.values() if sub.required]


def _apply_filtered(document: dict, op: str, spec: AttributeSpec, parsed: ValuePath, value) -> None:
    """`attr[filter]`: the matching values."""
    elements = [dict(element) for element in document.get(spec.name, [])]
    targets = _matching(elements, parsed)
    if op == "remove":
        # Removing what is not there changes nothing: IdPs retry, and the result is what they asked.
        elements = [element for index, element in enumerate(elements) if index not in targets]
    else:
        cleaned = clean_value(spec, value, label=spec.name, single=True)
        if not isinstance(cleaned, dict):
            raise invalid_value(f"The value for {spec.name}[...] must be an object.")
        if not targets:
            if op == "replace":
                raise ScimError(400, f"No value of {spec.name} matches the path's filter.", "noTarget")
            elements.append(cleaned)
            targets = [len(elements) - 1]
        else:
            for index in targets:
                elements[index] = {**elements[index], **cleaned}
        _set_primary_alone(elements, set(targets))
    if elements:
        document[spec.name] = elements
    else:
        document.pop(spec.name, None)


def _apply_one(document: dict, op: str, path: str, value, resource: ResourceSpec) -> None:
    parsed, spec, sub = _resolve(path, resource)
    if spec is None:
        return  # an attribute we do not keep
    if sub is not None:
        if sub.type == "ignored":
            return
        _apply_sub(document, op, spec, sub, parsed, value)
    elif parsed.value_filter is not None:
        if not spec.multi_valued:
            raise ScimError(400, f"{spec.name} is single-valued: it takes no value filter.", "invalidPath")
        _apply_filtered(document, op, spec, parsed, value)
    else:
        _apply_whole(document, op, spec, value)


def patch_apply(document: dict, operations: list[Operation], *, resource: ResourceSpec) -> dict:
    """The document after the operations, in order (RFC 7644 3.5.2). The stored one is untouched."""
    result = copy.deepcopy(document)
    for operation in operations:
        if operation.path is None:
            if operation.op == "remove":
                raise ScimError(400, "A remove operation needs a path.", "noTarget")
            if not isinstance(operation.value, dict):
                raise invalid_value("Without a path, the value is an object of attributes.")
            # Okta: {"op": "replace", "value": {"active": false}}; keys may be paths themselves.
            for key, value in operation.value.items():
                if isinstance(key, str) and key.lower() not in COMMON_READ_ONLY:
                    _apply_one(result, operation.op, key, value, resource)
            continue
        _apply_one(result, operation.op, operation.path, operation.value, resource)
    return result
