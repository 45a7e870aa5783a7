"""Property test over the whole API schema: no generated request may produce a 500."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from config.api import api
from ingestion.models import IngestToken

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1"))


@pytest.fixture
def fuzz_token(transactional_db, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1_000_000
    return IngestToken.issue("fuzzer")[1]


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_the_schema_allows_produces_a_server_error(case, live_server, fuzz_token):
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {fuzz_token}"},
        checks=[not_a_server_error],
    )
