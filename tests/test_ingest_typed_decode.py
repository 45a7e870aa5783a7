"""The native body's typed decode: every body it takes gives the batch the full path gives, and
every other body gets the full path's own answer."""

import time
from datetime import UTC, datetime

import hypothesis
import orjson
import pytest
from hypothesis import strategies as st

from ingestion.errors import ApiError
from ingestion.parsers import (
    ParsedSample,
    SampleColumns,
    _native_batch_typed,
    decode_json,
    parse_native_batch,
    parse_native_body,
    series_idents,
)
from instances import store
from instances.models import Series

NOW_MS = int(time.time() * 1000)
DAY_MS = 86_400_000


def outcome(parse, body: bytes):
    """What a parse gives: its batch, or its error's status, message and details."""
    try:
        return parse(body)
    except ApiError as error:
        return (type(error), error.status, error.message, error.details)


def full_path(body: bytes):
    return parse_native_batch(decode_json(body))


def body_of(samples, instance=None, **extra) -> bytes:
    payload = {"instance": instance or {"agent_id": "web-1"}, "samples": samples, **extra}
    return orjson.dumps(payload)


def bench_body() -> bytes:
    return body_of(
        [
            {"name": f"metric_{m}", "value": (s * 13 + m) % 1000 / 10, "ts": NOW_MS - s * 1000}
            for s in range(100)
            for m in range(10)
        ]
    )


def test_a_usual_body_is_decoded_typed_as_the_full_path_parses_it():
    body = bench_body()

    typed = _native_batch_typed(body)

    assert typed is not None
    assert typed == full_path(body)
    assert parse_native_body(body) == typed


def test_labels_units_and_instance_fields_are_taken_by_the_typed_decode():
    body = body_of(
        [
            {"name": "cpu", "value": 1, "ts": NOW_MS, "labels": {"core": 0, "up": True}},
            {"name": "cpu", "value": 2.5, "ts": NOW_MS, "labels": None, "unit": "percent"},
            {"name": "cpu", "value": -3, "ts": NOW_MS - 1, "labels": {}, "unit": None},
        ],
        instance={"agent_id": " web-1 ", "name": "Web", "metadata": {"os": "linux"}},
    )

    typed = _native_batch_typed(body)

    assert typed is not None
    assert typed == full_path(body)
    assert typed.samples[0].labels == {"core": "0", "up": "true"}


@pytest.mark.parametrize(
    "body",
    [
        # Unknown keys, in a sample and around the samples: the full path ignores them.
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS, "note": "x"}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS}], note="x"),
        # Invalid UTF-8 where the typed decode would only skip over it.
        b'{"instance": {"agent_id": "a"}, "x": "\xff", "samples": []}',
        b'{"instance": {"agent_id": "a"}, "samples": [{"name": "c", "value": 1, "ts": 1, '
        b'"labels": {"k": "\xff"}}]}',
        # Nesting deeper than msgspec goes when it skips a value it keeps raw.
        b'{"instance": ' + b"[" * 1000 + b"]" * 1000 + b', "samples": []}',
        b'{"instance": {"agent_id": "a"}, "samples": [{"name": "c", "value": 1, "ts": 1, '
        b'"labels": ' + b"[" * 1000 + b"]" * 1000 + b"}]}",
        # A lone surrogate.
        b'{"instance": {"agent_id": "a\\ud800"}, "samples": []}',
        # Timestamps as an RFC 3339 string, a float, missing; out of the window.
        body_of([{"name": "cpu", "value": 1, "ts": "2026-01-01T00:00:00Z"}]),
        body_of([{"name": "cpu", "value": 1, "ts": float(NOW_MS)}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS + DAY_MS}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS - 400 * DAY_MS}]),
        # Bad values, names, labels, units, instance; too many samples; not JSON.
        body_of([{"name": "cpu", "value": True, "ts": NOW_MS}]),
        body_of([{"name": "cpu", "value": "1", "ts": NOW_MS}]),
        b'{"instance": {"agent_id": "a"}, "samples": [{"name": "c", "value": 1e400, "ts": 1}]}',
        body_of([{"name": "1cpu", "value": 1, "ts": NOW_MS}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS, "labels": {"a-b": "x"}}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS, "labels": ["x"]}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS, "unit": "p\x00"}]),
        body_of([{"name": "cpu", "value": 1, "ts": NOW_MS}], instance={"name": "no id"}),
        body_of([{"name": "cpu", "value": i, "ts": NOW_MS} for i in range(2001)]),
        body_of(["cpu"]),
        b"[]",
        b'{"samples": [}',
        b"",
    ],
)
def test_any_other_body_gets_the_full_paths_answer(body, settings):
    settings.INGEST_MAX_SAMPLES = 2000

    assert _native_batch_typed(body) is None
    assert outcome(parse_native_body, body) == outcome(full_path, body)


def test_a_sample_without_a_timestamp_is_stamped_now_by_the_full_path():
    body = body_of([{"name": "cpu", "value": 1}, {"name": "cpu", "value": 2, "ts": None}])
    before = datetime.now(UTC)

    assert _native_batch_typed(body) is None
    batch = parse_native_body(body)

    assert before <= batch.samples[0].ts == batch.samples[1].ts <= datetime.now(UTC)


# Not only strings: a name that cannot be hashed ({}, a list) must be refused, not crash the
# check for names already seen good.
names = st.sampled_from(
    ["cpu", "mem_used", "node:load1", "", "1bad", "a" * 201, "a-b", {}, ["cpu"], 5]
)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([True, None, "1", [1]]),
)
stamps = st.one_of(
    st.integers(min_value=NOW_MS - 2 * DAY_MS, max_value=NOW_MS + 60_000),
    # Not None: the full path stamps such a sample now, which two parses see apart.
    st.sampled_from([NOW_MS + DAY_MS, NOW_MS - 400 * DAY_MS, float(NOW_MS), "x", True]),
)
label_sets = st.one_of(
    st.dictionaries(
        st.sampled_from(["core", "mode", "9x", "le"]),
        st.one_of(
            st.text(max_size=5),
            st.integers(min_value=-(2**63), max_value=2**63),
            st.floats(allow_nan=False),
            st.booleans(),
        ),
        max_size=3,
    ),
    st.sampled_from([None, [], "x"]),
)
units = st.sampled_from(["percent", "", None, 5, "p\x00"])
optional = object()


@st.composite
def samples(draw):
    sample = {"name": draw(names), "value": draw(values), "ts": draw(stamps)}
    for key, strategy in (("labels", label_sets), ("unit", units)):
        value = draw(st.one_of(st.just(optional), strategy))
        if value is not optional:
            sample[key] = value
    if draw(st.integers(0, 9)) == 0:
        del sample[draw(st.sampled_from(["name", "value"]))]
    return sample


@hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
@hypothesis.given(st.lists(samples(), max_size=6), st.sampled_from(["web-1", "", None]))
def test_the_typed_decode_and_the_full_path_agree(samples, agent_id):
    body = body_of(samples, instance={"agent_id": agent_id})

    typed = _native_batch_typed(body)
    full = outcome(full_path, body)

    if typed is not None:
        assert typed == full
    assert outcome(parse_native_body, body) == full


@pytest.mark.django_db(transaction=True)
def test_an_ingested_body_with_invalid_utf8_is_refused_and_stores_nothing(api):
    body = b'{"instance": {"agent_id": "web-1"}, "x": "\xff", "samples": '
    body += orjson.dumps([{"name": "cpu", "value": 1, "ts": NOW_MS}]) + b"}"

    response = api.post("/api/v1/ingest", body)

    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON: str is not valid UTF-8")
    assert not Series.objects.filter(name="cpu").exists()
    assert store.count_samples() == 0


def test_series_idents_are_each_samples_own():
    body = body_of(
        [
            {"name": "cpu", "value": 1, "ts": NOW_MS},
            {"name": "cpu", "value": 1, "ts": NOW_MS, "labels": {"b": "1", "a": "2"}},
            {"name": "cpu", "value": 1, "ts": NOW_MS, "labels": {"a": "2", "b": "1"}},
            {"name": "mem", "value": 1, "ts": NOW_MS, "labels": {}},
        ]
    )
    samples = parse_native_body(body).samples

    idents = series_idents(samples)

    assert idents == [sample.series_ident for sample in samples]
    assert idents[1] == idents[2] != idents[0]


def test_samples_held_as_columns_read_back_as_given():
    moment = datetime.fromtimestamp(NOW_MS / 1000, UTC).replace(microsecond=123457)
    samples = [
        ParsedSample("cpu", 1.5, moment, {"core": "0"}, "percent"),
        ParsedSample("cpu", 2.0, moment, {"core": "1"}, "percent"),
        ParsedSample("cpu", -0.0, moment.replace(microsecond=1), {"core": "0"}, ""),
        ParsedSample("mem", 3.0, moment, {}, ""),
    ]

    columns = SampleColumns.of(samples)

    assert list(columns) == samples and columns == samples and len(columns) == 4
    # A series is each distinct name, labels and unit; the third sample's unit differs.
    assert [(s.name, s.labels, s.unit) for s in columns.series] == [
        ("cpu", {"core": "0"}, "percent"),
        ("cpu", {"core": "1"}, "percent"),
        ("cpu", {"core": "0"}, ""),
        ("mem", {}, ""),
    ]
    assert columns.positions.tolist() == [0, 1, 2, 3]
    assert columns.earliest == moment.replace(microsecond=1)
    assert SampleColumns.of(columns) is columns


@pytest.mark.parametrize("ts", [2**63, 2**64 - 1, -(2**63) - 1])
def test_a_timestamp_beyond_64_bits_gets_the_full_paths_answer(ts):
    body = b'{"instance": {"agent_id": "web-1"}, "samples": [{"name": "cpu", "value": 1, '
    body += f'"ts": {ts}}}]}}'.encode()

    assert _native_batch_typed(body) is None
    assert outcome(parse_native_body, body) == outcome(full_path, body)
