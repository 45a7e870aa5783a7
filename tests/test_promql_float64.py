"""PromQL over values at float64's extremes answers as Prometheus does: ±Inf where a sum
overflows, NaN where +Inf meets -Inf, never an error."""

from datetime import UTC, datetime, timedelta

import pytest

from instances import store
from instances.models import Instance, Series

pytestmark = pytest.mark.django_db

MAX = 1.7976931348623157e308
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)


@pytest.fixture
def extreme():
    """A gauge swinging between float64's largest and lowest values, a sample every 15 s."""
    series = Series.objects.create(instance=Instance.register("fuzzer"), name="extreme")
    store.write_samples(
        [(series.pk, T0 + timedelta(seconds=15 * n), MAX if n % 2 else -MAX) for n in range(4)]
    )


@pytest.mark.parametrize(
    ("query", "value"),
    [
        # x * value overflows in the regression's sums: Prometheus's Kahan sums give NaN.
        ("deriv(extreme[1m])", "NaN"),
        ("predict_linear(extreme[1m], 60)", "NaN"),
        ("sum_over_time(extreme[1m])", "0"),
        ("extreme * 2", "+Inf"),
    ],
)
def test_functions_over_float64_extremes_answer_as_prometheus_does(api, extreme, query, value):
    time = (T0 + timedelta(seconds=45)).timestamp()

    response = api.get("/prometheus/api/v1/query", {"query": query, "time": str(time)})

    assert response.status_code == 200, response.content
    [result] = response.json()["data"]["result"]
    assert result["value"] == [time, value]
