"""Safe metadata filters for search: (column, op, value) triples -> a LanceDB SQL predicate.

User text never reaches the SQL string. A filter is a `FilterCondition(column, op, value)`:
- `column` must be a key of `VIDEO_FILTER_COLUMNS` (the `videos` table's metadata columns); the
  SQL names the column through that whitelist, never through the text it was given;
- `op` must be one of the operators allowed for the column's kind (`OPERATORS_BY_KIND`);
- `value` is parsed by code into a Python value of the column's kind (finite float, int, bool,
  timezone-aware datetime, hex id, plain string) and written back as a SQL literal by code:
  numbers in positional notation, booleans as TRUE/FALSE, timestamps as
  TIMESTAMP 'YYYY-MM-DDTHH:MM:SS.ffffff' (UTC), strings single-quoted with quotes doubled.

`parse_where("duration_s>10")` turns a command-line / query-string expression into a triple.
Expression syntax: COLUMN OP VALUE with OP one of = == != < <= > >= ^= (^= is "starts with");
VALUE may be wrapped in one pair of matching single or double quotes.

Anything else raises SearchInputError with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from favor_ops.retrieval.search_errors import SearchInputError

# Column kinds.
NUMBER = "number"
INTEGER = "integer"
BOOLEAN = "boolean"
TIMESTAMP = "timestamp"
HEX_ID = "hex_id"
STRING = "string"

# Filterable `videos` columns and their kinds (the whitelist).
VIDEO_FILTER_COLUMNS: Mapping[str, str] = {
    "video_id": HEX_ID,
    "uri": STRING,
    "duration_s": NUMBER,
    "fps": NUMBER,
    "has_audio": BOOLEAN,
    "has_video": BOOLEAN,
    "n_windows": INTEGER,
    "indexed_at": TIMESTAMP,
    "model_version": STRING,
    "status": STRING,
}

# Operator names (what a triple carries) -> SQL comparison token. "startswith" is a function.
EQ, NE, LT, LE, GT, GE, STARTSWITH = "=", "!=", "<", "<=", ">", ">=", "startswith"
SQL_COMPARISONS: Mapping[str, str] = {EQ: "=", NE: "!=", LT: "<", LE: "<=", GT: ">", GE: ">="}
ORDERED_OPS = frozenset({EQ, NE, LT, LE, GT, GE})
OPERATORS_BY_KIND: Mapping[str, frozenset[str]] = {
    NUMBER: ORDERED_OPS,
    INTEGER: ORDERED_OPS,
    TIMESTAMP: ORDERED_OPS,
    BOOLEAN: frozenset({EQ, NE}),
    HEX_ID: frozenset({EQ, NE, STARTSWITH}),
    STRING: frozenset({EQ, NE, STARTSWITH}),
}
# Spellings accepted in expressions and triples -> canonical operator name.
OPERATOR_ALIASES: Mapping[str, str] = {
    "=": EQ, "==": EQ, "eq": EQ, "!=": NE, "<>": NE, "ne": NE, "<": LT, "lt": LT, "<=": LE, "le": LE,
    ">": GT, "gt": GT, ">=": GE, "ge": GE, "^=": STARTSWITH, "startswith": STARTSWITH, "prefix": STARTSWITH,
}  # fmt: skip

_BOOLEAN_WORDS: Mapping[str, bool] = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_HEX_ID_PATTERN = re.compile(r"^[0-9a-f]{1,64}$")
_EXPRESSION_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|<>|==|\^=|=|<|>)\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class FilterLimits:
    max_conditions: int = 16  # conditions in one request
    max_string_chars: int = 1024  # length of a string value
    max_expression_chars: int = 2048  # length of one `--where` expression


DEFAULT_LIMITS = FilterLimits()


@dataclass(frozen=True)
class FilterCondition:
    """One validated condition: `column` from the whitelist, canonical `op`, `value` of the column's kind."""

    column: str
    op: str
    value: Any

    def as_triple(self) -> tuple[str, str, Any]:
        value = self.value.isoformat() if isinstance(self.value, dt.datetime) else self.value
        return (self.column, self.op, value)


def _reject(what: str, reason: str) -> SearchInputError:
    return SearchInputError(what, reason)


def _parse_number(column: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _reject(column, f"{column} needs a number, got a boolean")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _reject(column, f"{column} needs a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise _reject(column, f"{column} needs a finite number, got {str(value)[:40]!r}")
    return number


def _parse_integer(column: str, value: Any) -> int:
    number = _parse_number(column, value)
    if number != int(number) or abs(number) > 2**53:
        raise _reject(column, f"{column} needs a whole number, got {str(value)[:40]!r}")
    return int(number)


def _parse_boolean(column: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _BOOLEAN_WORDS:
        raise _reject(column, f"{column} needs true or false, got {str(value)[:40]!r}")
    return _BOOLEAN_WORDS[word]


def _parse_timestamp(column: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _reject(column, f"{column} needs an ISO date or time (2024-05-01 or 2024-05-01T12:00:00Z), "
                                  f"got {str(value)[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)  # naive times are UTC, like the stored ones
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before datetime.min in UTC
        raise _reject(column, f"{column} is out of range in UTC (years 1-9999), got {str(value)[:40]!r}") from None


def _parse_string(column: str, value: Any, limits: FilterLimits) -> str:
    if not isinstance(value, str):
        raise _reject(column, f"{column} needs a text value, got {type(value).__name__}")
    if len(value) > limits.max_string_chars:
        raise _reject(column, f"{column} value is longer than {limits.max_string_chars} characters")
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise _reject(column, f"{column} value contains control characters")
    return value


def _parse_hex_id(column: str, value: Any) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if not text or not _HEX_ID_PATTERN.match(text):
        raise _reject(column, f"{column} needs lowercase hex digits [0-9a-f], got {str(value)[:40]!r}")
    return text


def validate_condition(column: Any, op: Any, value: Any, limits: FilterLimits = DEFAULT_LIMITS) -> FilterCondition:
    """(column, op, value) from anywhere -> a FilterCondition, or SearchInputError."""
    if not isinstance(column, str) or column not in VIDEO_FILTER_COLUMNS:
        allowed = ", ".join(sorted(VIDEO_FILTER_COLUMNS))
        raise _reject(str(column)[:40], f"unknown filter column {str(column)[:40]!r}; allowed: {allowed}")
    kind = VIDEO_FILTER_COLUMNS[column]
    canonical = OPERATOR_ALIASES.get(op.strip().lower()) if isinstance(op, str) else None
    if canonical is None or canonical not in OPERATORS_BY_KIND[kind]:
        allowed = " ".join(sorted(OPERATORS_BY_KIND[kind]))
        raise _reject(column, f"operator {str(op)[:10]!r} is not allowed on {column} ({kind}); allowed: {allowed}")
    if value is None:
        raise _reject(column, f"{column} needs a value")
    if kind == NUMBER:
        parsed: Any = _parse_number(column, value)
    elif kind == INTEGER:
        parsed = _parse_integer(column, value)
    elif kind == BOOLEAN:
        parsed = _parse_boolean(column, value)
    elif kind == TIMESTAMP:
        parsed = _parse_timestamp(column, value)
    elif kind == HEX_ID:
        parsed = _parse_hex_id(column, value)
    else:
        parsed = _parse_string(column, value, limits)
    return FilterCondition(column, canonical, parsed)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_where(expression: str, limits: FilterLimits = DEFAULT_LIMITS) -> FilterCondition:
    """`duration_s>10`, `uri^=s3://bucket/cats/`, `has_audio=true`, `indexed_at>=2024-05-01` -> FilterCondition."""
    if not isinstance(expression, str) or not expression.strip():
        raise _reject("--where", "empty filter expression; expected COLUMN OP VALUE, e.g. duration_s>10")
    if len(expression) > limits.max_expression_chars:
        raise _reject("--where", f"filter expression is longer than {limits.max_expression_chars} characters")
    match = _EXPRESSION_PATTERN.match(expression)
    if not match:
        raise _reject("--where", f"cannot read filter {expression[:60]!r}; expected COLUMN OP VALUE with OP one of "
                                 "= != < <= > >= ^=")
    column, op, raw_value = match.groups()
    if raw_value == "":
        raise _reject("--where", f"filter {expression[:60]!r} has no value")
    return validate_condition(column, op, _unquote(raw_value), limits)


def parse_filters(
    items: Iterable[Any] | None, limits: FilterLimits = DEFAULT_LIMITS
) -> list[FilterCondition]:
    """Expressions (str), triples/lists of 3, mappings {column, op, value} or FilterConditions -> conditions."""
    conditions: list[FilterCondition] = []
    for item in items or ():
        if isinstance(item, FilterCondition):
            condition = validate_condition(item.column, item.op, item.value, limits)
        elif isinstance(item, str):
            condition = parse_where(item, limits)
        elif isinstance(item, Mapping):
            unknown = set(item) - {"column", "op", "value"}
            if unknown:
                raise _reject("where", f"filter objects take column, op and value; got {sorted(unknown)[:3]}")
            condition = validate_condition(item.get("column"), item.get("op"), item.get("value"), limits)
        elif isinstance(item, (tuple, list)) and len(item) == 3:
            condition = validate_condition(*item, limits=limits)
        else:
            raise _reject("where", f"a filter is COLUMN OP VALUE text or a (column, op, value) triple, got {str(item)[:40]!r}")
        conditions.append(condition)
        if len(conditions) > limits.max_conditions:
            raise _reject("where", f"at most {limits.max_conditions} filter conditions")
    return conditions


# ---- SQL rendering (values come only from validated conditions) ------------------------------


def sql_string(value: str) -> str:
    """A SQL string literal: quotes doubled, backslashes kept literal (LanceDB/DataFusion do not escape them)."""
    return "'" + value.replace("'", "''") + "'"


def sql_number(value: float | int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    if isinstance(value, int):
        return str(int(value))
    return np.format_float_positional(float(value), trim="-")


def sql_timestamp(value: dt.datetime) -> str:
    moment = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    # The year is zero-padded by hand: strftime('%Y') gives '1' for year 1 on glibc, which SQL rejects.
    return f"TIMESTAMP '{moment.year:04d}-{moment.strftime('%m-%dT%H:%M:%S.%f')}'"


def _sql_literal(kind: str, value: Any) -> str:
    if kind == NUMBER:
        return sql_number(float(value))
    if kind == INTEGER:
        return sql_number(int(value))
    if kind == BOOLEAN:
        return "TRUE" if value is True else "FALSE"
    if kind == TIMESTAMP:
        return sql_timestamp(value)
    return sql_string(str(value))


def condition_sql(condition: FilterCondition) -> str:
    """One validated condition -> SQL. The column name is the whitelist's own string."""
    column = next(name for name in VIDEO_FILTER_COLUMNS if name == condition.column)  # the whitelist's object
    kind = VIDEO_FILTER_COLUMNS[column]
    if condition.op not in OPERATORS_BY_KIND[kind]:
        raise ValueError(f"operator {condition.op!r} not allowed on {column}")
    literal = _sql_literal(kind, condition.value)
    if condition.op == STARTSWITH:
        return f"starts_with({column}, {literal})"
    return f"{column} {SQL_COMPARISONS[condition.op]} {literal}"


def build_where(conditions: Iterable[FilterCondition]) -> str | None:
    """AND of the conditions (each re-validated), None when there are none."""
    parts = []
    for condition in conditions:
        checked = validate_condition(condition.column, condition.op, condition.value)
        parts.append(f"({condition_sql(checked)})")
    return " AND ".join(parts) if parts else None


def sql_in_hex_ids(column: str, video_ids: Iterable[str]) -> str:
    """`video_id IN ('ab12', ...)` for ids that are lowercase hex (anything else is refused)."""
    ids = list(video_ids)
    if column not in ("video_id",):
        raise ValueError(f"sql_in_hex_ids is for video_id, not {column!r}")
    if not ids:
        raise ValueError("sql_in_hex_ids needs at least one id")
    for video_id in ids:
        if not isinstance(video_id, str) or not _HEX_ID_PATTERN.match(video_id):
            raise SearchInputError(str(video_id)[:40], "video ids are lowercase hex [0-9a-f]")
    return f"{column} IN ({', '.join(sql_string(v) for v in ids)})"
