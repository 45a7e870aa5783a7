"""The Prometheus query API over Vigil's store: shapes, auth, errors and limits.

Results against real Prometheus are in test_promql_compliance.py; these cover what that cannot
reach: errors for what Vigil does not support, bad input, and the limits that keep a huge query
from taking the web process down.
"""

import base64
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from instances import store
from instances.models import Instance, Series

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PROMETHEUS_API = "/prometheus/api/v1"


def at(minutes: float) -> str:
    return str((T0 + timedelta(minutes=minutes)).timestamp())


@pytest.fixture
def requests_total():
    """Two instances' request counters, a sample every 15 s for an hour (a reset at 30 min
    on web-2)."""
    for agent in ("web-1", "web-2"):
        instance = Instance.register(agent)
        series = Series.objects.create(
            instance=instance, name="http_requests_total", labels={"job": "api", "code": "200"}
        )
        rows = []
        for step in range(241):
            value = step * 10.0 if agent == "web-1" or step < 120 else (step - 119) * 10.0
            rows.append((series.pk, T0 + timedelta(seconds=15 * step), value))
        store.write_samples(rows)


def get(api, path, **params):
    return api.get(f"{PROMETHEUS_API}/{path}", params)


def test_instant_query_answers_prometheus_vector_shape(api, requests_total):
    body = get(api, "query", query="http_requests_total", time=at(10)).json()

    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    metrics = sorted(item["metric"]["instance"] for item in body["data"]["result"])
    assert metrics == ["web-1", "web-2"]
    first = body["data"]["result"][0]
    assert first["metric"] == {
        "__name__": "http_requests_total", "code": "200", "instance": first["metric"]["instance"],
        "job": "api",
    }  # fmt: skip
    assert first["value"] == [float(at(10)), "400"]


def test_range_query_of_a_rate_sees_through_a_counter_reset(api, requests_total):
    body = get(
        api, "query_range", query="sum by (instance) (rate(http_requests_total[1m]))",
        start=at(20), end=at(40), step="5m",
    ).json()  # fmt: skip

    assert body["data"]["resultType"] == "matrix"
    by_instance = {item["metric"]["instance"]: item["values"] for item in body["data"]["result"]}
    for values in by_instance.values():
        assert [t for t, _ in values] == [float(at(m)) for m in (20, 25, 30, 35, 40)]
        # 10 per 15 s is 2/3 per second, the reset at 30 min included.
        assert all(abs(float(v) - 2 / 3) < 1e-9 for _, v in values)


def test_form_encoded_post_is_answered_like_get(api, requests_total):
    response = api.client.post(
        f"{PROMETHEUS_API}/query",
        {"query": "count(http_requests_total)", "time": at(10)},
        headers={"Authorization": f"Bearer {api.token}"},
    )

    assert response.json()["data"]["result"][0]["value"][1] == "2"


def test_scalar_and_string_results(api, requests_total):
    scalar = get(api, "query", query="scalar(count(http_requests_total)) * 2", time=at(10))
    string = get(api, "query", query='"hello"', time=at(10))

    assert scalar.json()["data"] == {"resultType": "scalar", "result": [float(at(10)), "4"]}
    assert string.json()["data"] == {"resultType": "string", "result": [float(at(10)), "hello"]}


def test_an_instant_range_selector_gives_the_raw_samples(api, requests_total):
    body = get(api, "query", query='http_requests_total{instance="web-1"}[1m]', time=at(10))

    (series,) = body.json()["data"]["result"]
    # [1m] at 10:00 holds 9:00 to 10:00, both ends included.
    assert [value for _, value in series["values"]] == ["360", "370", "380", "390", "400"]


def test_series_labels_and_label_values(api, requests_total):
    window = {"start": at(0), "end": at(60)}
    series = get(api, "series", **{"match[]": 'http_requests_total{instance="web-2"}'}, **window)
    labels = get(api, "labels", **window)
    values = get(api, "label/instance/values", **window)
    names = get(api, "label/__name__/values", **window)

    assert series.json()["data"] == [
        {"__name__": "http_requests_total", "code": "200", "instance": "web-2", "job": "api"}
    ]
    assert labels.json()["data"] == ["__name__", "code", "instance", "job"]
    assert values.json()["data"] == ["web-1", "web-2"]
    assert names.json()["data"] == ["http_requests_total"]


def test_buildinfo_and_metadata(api, requests_total):
    build = get(api, "status/buildinfo").json()["data"]
    metadata = get(api, "metadata").json()["data"]

    assert build["version"].startswith("2.")
    assert metadata["http_requests_total"] == [{"type": "counter", "help": "", "unit": ""}]


def test_the_api_needs_a_token_or_a_viewers_session(client, api, requests_total, user_with_role):
    from accounts.permissions import Role

    anonymous = client.get(f"{PROMETHEUS_API}/query", {"query": "up"})
    basic = base64.b64encode(f"grafana:{api.token}".encode()).decode()
    with_basic = client.get(
        f"{PROMETHEUS_API}/query", {"query": "vector(1)"},
        headers={"Authorization": f"Basic {basic}"},
    )  # fmt: skip
    wrong_basic = client.get(
        f"{PROMETHEUS_API}/query", {"query": "vector(1)"},
        headers={"Authorization": "Basic " + base64.b64encode(b"grafana:nope").decode()},
    )  # fmt: skip
    client.force_login(user_with_role(Role.VIEWER))
    with_session = client.get(f"{PROMETHEUS_API}/query", {"query": "vector(1)"})

    assert anonymous.status_code == 401
    assert anonymous.json()["status"] == "error"
    assert with_basic.status_code == 200
    assert wrong_basic.status_code == 401
    assert with_session.status_code == 200


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("holt_winters(http_requests_total[5m], 0.5, 0.5)", "holt_winters"),
        ("sort_by_label(http_requests_total, 'code')", "sort_by_label"),
        ("limitk(1, http_requests_total)", "limitk"),
        ('http_requests_total{code="200" or job="api"}', "'or'"),
    ],
)
def test_what_vigil_does_not_support_is_a_bad_data_error_naming_it(api, query, named):
    response = get(api, "query", query=query, time=at(10))

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert named in body["error"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"query": "sum("}, "query"),
        ({"query": ""}, "query is empty"),
        ({"query": "up", "time": "yesterday"}, "time"),
        ({"query": "up", "time": "1e300"}, "time"),
        ({"query": "up", "time": "0001-01-01T00:00:00Z"}, "time"),
    ],
)
def test_bad_instant_queries_are_400_bad_data(api, params, fragment):
    response = get(api, "query", **params)

    assert response.status_code == 400
    assert response.json()["errorType"] == "bad_data"
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": at(0), "end": at(10), "step": "0"}, "step"),
        ({"start": at(0), "end": at(10), "step": "-5"}, "step"),
        ({"start": at(10), "end": at(0), "step": "15"}, "end timestamp"),
        ({"start": at(0), "end": at(60 * 24 * 30), "step": "1"}, "11,000 points"),
        ({"start": at(0), "end": at(10)}, "step"),
        ({"start": at(0), "end": at(10), "step": "forever"}, "step"),
    ],
)
def test_bad_range_queries_are_400_bad_data(api, params, fragment):
    response = get(api, "query_range", query="up", **params)

    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_many_to_many_matching_is_an_execution_error(api, requests_total):
    response = get(
        api, "query", query="http_requests_total + on(job) http_requests_total", time=at(10)
    )

    assert response.status_code == 422
    assert response.json()["errorType"] == "execution"


def test_a_query_over_more_samples_than_allowed_is_422_and_memory_stays_bounded(
    api, requests_total, settings
):
    settings.PROMQL_MAX_SAMPLES = 300
    process = psutil.Process()
    before = process.memory_info().rss

    response = get(api, "query", query="sum_over_time(http_requests_total[100y])", time=at(60))

    grown = process.memory_info().rss - before
    assert response.status_code == 422
    assert response.json()["errorType"] == "execution"
    assert "too many samples" in response.json()["error"]
    assert grown < 50 * 2**20


def test_a_query_past_its_timeout_answers_the_timeout_error(api, requests_total):
    response = get(
        api, "query", query="max_over_time(http_requests_total[1h:1s])", time=at(60),
        timeout="1ms",
    )  # fmt: skip

    assert response.status_code == 503
    assert response.json()["errorType"] == "timeout"


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.one_of(
        st.text(max_size=60),
        st.from_regex(
            r"(sum|rate|topk|histogram_quantile|label_replace|absent)?\(?"
            r"[a-z_]{1,12}(\{[a-z]{1,4}(=|!=|=~|!~)\"[^\"\\]{0,6}\"\})?(\[[0-9]{1,3}[smhd]\])?"
            r"( (\+|/|and|or|>|== bool) [0-9a-z_.]{1,8})?\)?",
            fullmatch=True,
        ),
    ),
    time=st.one_of(st.none(), st.text(max_size=12), st.floats(allow_nan=True)),
)
def test_no_query_text_or_time_gives_a_500(api, query, time):
    params = {"query": query}
    if time is not None:
        params["time"] = str(time)
    response = get(api, "query", **params)

    assert response.status_code in (200, 400, 422, 503), response.content
    assert response.json()["status"] in ("success", "error")
