"""Safe filter building: whitelist of columns and operators, values parsed and rendered by code."""

from __future__ import annotations

import datetime as dt

import pytest

from favor_ops.retrieval.filters import (
    FilterCondition,
    build_where,
    parse_filters,
    parse_where,
    sql_in_hex_ids,
    validate_condition,
)
from favor_ops.retrieval.search_errors import SearchInputError


@pytest.mark.parametrize(
    "expression, triple",
    [
        ("duration_s>10", ("duration_s", ">", 10.0)),
        ("  duration_s <= 2.5 ", ("duration_s", "<=", 2.5)),
        ("n_windows==3", ("n_windows", "=", 3)),
        ("has_audio=true", ("has_audio", "=", True)),
        ("has_video != no", ("has_video", "!=", False)),
        ("uri^=s3://bucket/a b/", ("uri", "startswith", "s3://bucket/a b/")),
        ("uri='/x/it''s.mp4'", ("uri", "=", "/x/it''s.mp4")),
        ('uri="a=b"', ("uri", "=", "a=b")),
        ("video_id=ABC123", ("video_id", "=", "abc123")),
        ("indexed_at>=2024-05-01", ("indexed_at", ">=", "2024-05-01T00:00:00+00:00")),
        ("indexed_at<2024-05-01T12:30:00+02:00", ("indexed_at", "<", "2024-05-01T10:30:00+00:00")),
    ],
)
def test_parse_where_expressions(expression, triple):
    assert parse_where(expression).as_triple() == triple


@pytest.mark.parametrize(
    "conditions, sql",
    [
        ([("duration_s", ">", 10)], "(duration_s > 10)"),
        ([("duration_s", "<", "1e-3")], "(duration_s < 0.001)"),
        ([("n_windows", ">=", "4")], "(n_windows >= 4)"),
        ([("has_audio", "=", "yes"), ("has_video", "!=", False)], "(has_audio = TRUE) AND (has_video != FALSE)"),
        ([("uri", "startswith", "s3://b/")], "(starts_with(uri, 's3://b/'))"),
        ([("uri", "=", "x' OR '1'='1")], "(uri = 'x'' OR ''1''=''1')"),
        ([("uri", "=", "a\\'; DROP TABLE videos; --")], "(uri = 'a\\''; DROP TABLE videos; --')"),
        ([("indexed_at", ">", "2024-05-01T00:00:00Z")], "(indexed_at > TIMESTAMP '2024-05-01T00:00:00.000000')"),
        ([("status", "=", "indexed")], "(status = 'indexed')"),
    ],
)
def test_build_where_renders_literals(conditions, sql):
    assert build_where(parse_filters(conditions)) == sql


def test_build_where_of_nothing_is_none():
    assert build_where([]) is None


@pytest.mark.parametrize(
    "triple, reason_part",
    [
        (("duration_s; DROP TABLE videos", ">", 1), "unknown filter column"),
        (("uri) OR (1=1", "=", "x"), "unknown filter column"),
        (("tokens", "=", "x"), "unknown filter column"),
        (("duration_s", "LIKE", "1"), "operator 'LIKE' is not allowed"),
        (("duration_s", "startswith", "1"), "not allowed on duration_s"),
        (("has_audio", ">", "true"), "not allowed on has_audio"),
        (("duration_s", ">", "1 OR 1=1"), "needs a number"),
        (("duration_s", ">", "nan"), "finite number"),
        (("duration_s", ">", "inf"), "finite number"),
        (("duration_s", ">", True), "got a boolean"),
        (("n_windows", "=", "2.5"), "whole number"),
        (("has_audio", "=", "maybe"), "needs true or false"),
        (("indexed_at", ">", "yesterday'; --"), "ISO date"),
        (("video_id", "=", "abc' OR '1'='1"), "hex digits"),
        (("video_id", "=", "../etc"), "hex digits"),
        (("uri", "=", "a\nb"), "control characters"),
        (("uri", "=", 5), "needs a text value"),
        (("uri", "=", None), "needs a value"),
    ],
)
def test_bad_conditions_are_rejected(triple, reason_part):
    with pytest.raises(SearchInputError) as info:
        validate_condition(*triple)
    assert reason_part in info.value.reason
    assert info.value.stage == "search"


@pytest.mark.parametrize("expression", ["", "duration_s", ">10", "duration_s>", "1duration>2", "duration_s ~ 3",
                                        "duration_s>1 AND 1=1"])
def test_malformed_expressions_are_rejected(expression):
    with pytest.raises(SearchInputError):
        parse_where(expression)


def test_parse_filters_accepts_triples_mappings_conditions_and_text():
    conditions = parse_filters([
        ("duration_s", "gt", "3"),
        {"column": "has_audio", "op": "=", "value": True},
        FilterCondition("uri", "startswith", "/a/"),
        "fps<=2",
    ])  # fmt: skip
    assert [c.as_triple() for c in conditions] == [
        ("duration_s", ">", 3.0), ("has_audio", "=", True), ("uri", "startswith", "/a/"), ("fps", "<=", 2.0)]


def test_parse_filters_rejects_other_shapes_and_too_many():
    with pytest.raises(SearchInputError):
        parse_filters([{"column": "uri", "op": "=", "value": "a", "sql": "1=1"}])
    with pytest.raises(SearchInputError):
        parse_filters([42])
    with pytest.raises(SearchInputError) as info:
        parse_filters(["duration_s>1"] * 17)
    assert "at most 16" in info.value.reason


def test_timestamps_are_compared_in_utc():
    condition = validate_condition("indexed_at", ">=", dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9))))
    assert build_where([condition]) == "(indexed_at >= TIMESTAMP '2024-01-01T00:00:00.000000')"


def test_sql_in_hex_ids_refuses_non_hex():
    assert sql_in_hex_ids("video_id", ["ab", "0f"]) == "video_id IN ('ab', '0f')"
    with pytest.raises(SearchInputError):
        sql_in_hex_ids("video_id", ["ab' OR 'x"])


@pytest.mark.parametrize(
    "expression, sql",
    [
        ("indexed_at>0001-01-01", "(indexed_at > TIMESTAMP '0001-01-01T00:00:00.000000')"),
        ("indexed_at>=0999-12-31T23:59:59.5Z", "(indexed_at >= TIMESTAMP '0999-12-31T23:59:59.500000')"),
        ("indexed_at<9999-12-31T23:59:59", "(indexed_at < TIMESTAMP '9999-12-31T23:59:59.000000')"),
    ],
)
def test_sql_timestamps_pad_the_year_to_four_digits(expression, sql):
    assert build_where([parse_where(expression)]) == sql


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_timestamps_outside_utc_range_are_a_search_input_error(value):
    with pytest.raises(SearchInputError) as info:
        parse_where(f"indexed_at>{value}")
    assert "out of range" in info.value.reason and info.value.stage == "search"


def test_year_one_filter_runs_in_lancedb(tmp_path):
    """The padded literal is valid SQL for LanceDB: the earliest possible filter keeps every row."""
    import lancedb
    import pyarrow as pa

    table = lancedb.connect(str(tmp_path)).create_table(
        "videos", pa.table({"video_id": ["a", "b"],
                            "indexed_at": pa.array([dt.datetime(2024, 5, 1), dt.datetime(1999, 1, 1)],
                                                   type=pa.timestamp("us", tz="UTC"))}))
    where = build_where([parse_where("indexed_at>0001-01-01")])
    assert sorted(table.search().where(where).limit(None).to_arrow()["video_id"].to_pylist()) == ["a", "b"]
    where = build_where([parse_where("indexed_at>2000-01-01")])
    assert table.search().where(where).limit(None).to_arrow()["video_id"].to_pylist() == ["a"]
