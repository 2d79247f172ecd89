"""Parsing of import payloads into task dicts: JSON, JSON lines, CSV, TSV and TXT.

Pure functions: no database. `services.tasks_import` validates and writes what these return.
Errors are ImportFormatError with a message naming the file and the line or item.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from functools import partial

# Data key for TXT lines and bare values until the project's config names the real one.
UNDEFINED_DATA_KEY = "$undefined$"
TASK_KEYS = {"data", "annotations", "predictions", "meta", "id", "drafts", "completions"}


class ImportFormatError(ValueError):
    pass


@dataclass
class ParsedImport:
    tasks: list[dict] = field(default_factory=list)
    found_formats: dict[str, int] = field(default_factory=dict)
    data_columns: set[str] = field(default_factory=set)

    def extend(self, tasks: list[dict], fmt: str) -> None:
        self.tasks.extend(tasks)
        self.found_formats[fmt] = self.found_formats.get(fmt, 0) + 1
        for task in tasks:
            self.data_columns.update(task["data"].keys())


def normalize_task(item, *, where: str) -> dict:
    """A task in LS's shapes: {"data": {...}, "annotations": [...], ...} or the data dict itself."""
    if not isinstance(item, dict):
        if isinstance(item, str | int | float):
            return {"data": {UNDEFINED_DATA_KEY: item}}
        raise ImportFormatError(f"{where}: a task must be a JSON object, got {type(item).__name__}.")
    if "data" in item and isinstance(item["data"], dict) and set(item) <= TASK_KEYS:
        task = {"data": item["data"]}
        annotations = item.get("annotations", item.get("completions"))
        for key, value in (("annotations", annotations), ("predictions", item.get("predictions"))):
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ImportFormatError(f"{where}: \"{key}\" must be a list of objects.")
            task[key] = value
        if item.get("meta") is not None:
            if not isinstance(item["meta"], dict):
                raise ImportFormatError(f"{where}: \"meta\" must be an object.")
            task["meta"] = item["meta"]
        return task
    if "data" in item and not isinstance(item["data"], dict) and set(item) <= TASK_KEYS:
        raise ImportFormatError(f"{where}: \"data\" must be an object.")
    return {"data": item}


def parse_json_payload(payload, *, source: str = "request body") -> list[dict]:
    items = payload if isinstance(payload, list) else [payload]
    return [normalize_task(item, where=f"{source}, task #{index + 1}") for index, item in enumerate(items)]


def _parse_json_bytes(raw: bytes, *, name: str) -> list[dict]:
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFormatError(f"{name}: not valid JSON ({exc}).") from exc
    return parse_json_payload(payload, source=name)


def _parse_jsonl(raw: bytes, *, name: str) -> list[dict]:
    tasks = []
    for number, line in enumerate(raw.decode("utf-8-sig", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{name}, line {number}: not valid JSON ({exc.msg}).") from exc
        tasks.append(normalize_task(item, where=f"{name}, line {number}"))
    return tasks


def _parse_table(raw: bytes, *, name: str, delimiter: str) -> list[dict]:
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFormatError(f"{name}: the file is empty.") from None
    except csv.Error as exc:
        raise ImportFormatError(f"{name}, line 1: {exc}.") from exc
    header = [column.strip() for column in header]
    if not all(header) or len(set(header)) != len(header):
        raise ImportFormatError(f"{name}, line 1: column names must be non-empty and unique.")
    tasks = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise ImportFormatError(
                    f"{name}, line {reader.line_num}: {len(row)} columns, the header has {len(header)}."
                )
            tasks.append({"data": dict(zip(header, row, strict=True))})
    except csv.Error as exc:
        raise ImportFormatError(f"{name}, line {reader.line_num}: {exc}.") from exc
    return tasks


def _parse_txt(raw: bytes, *, name: str) -> list[dict]:
    lines = raw.decode("utf-8-sig").splitlines()
    return [{"data": {UNDEFINED_DATA_KEY: line}} for line in lines if line.strip()]


TEXT_FORMATS = {
    ".json": ("json", _parse_json_bytes),
    ".jsonl": ("jsonl", _parse_jsonl),
    ".ndjson": ("jsonl", _parse_jsonl),
    ".csv": ("csv", partial(_parse_table, delimiter=",")),
    ".tsv": ("tsv", partial(_parse_table, delimiter="\t")),
    ".txt": ("txt", _parse_txt),
}


def extension_of(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def parse_text_file(*, name: str, raw: bytes) -> tuple[str, list[dict]]:
    """Tasks from an uploaded JSON/JSONL/CSV/TSV/TXT file; returns (format, tasks)."""
    fmt, parser = TEXT_FORMATS[extension_of(name)]
    try:
        return fmt, parser(raw, name=name)
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{name}: not UTF-8 text.") from exc
