"""The types of the values the API reads (list limits, instance references, stored text,
free-form JSON, moments) and how it writes lists (``{"items": [...], "count": N}``) and the
links between its operations. How moments are written (ISO 8601, epoch milliseconds) belongs
to the data itself: ``instances/formats.py``."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from instances.formats import EPOCH
from instances.json_values import check_json, check_text

LATEST_MOMENT = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_LIST_LIMIT = 1000
# A list endpoint's ``limit`` query parameter: default 100 (given where it is used), at most 1000.
ListLimit = Annotated[int, Field(ge=1, le=MAX_LIST_LIMIT)]
# An ``instanceId`` or ``agentId`` in a request body: the instance's uuid or its agent's id.
InstanceRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(check_text),
]
# Text the API stores: PostgreSQL takes no NUL character (pydantic already refuses surrogates).
StoredText = Annotated[str, AfterValidator(check_text)]
# A free-form JSON object the API stores, e.g. instance metadata (instances/json_values.py).
JsonObject = Annotated[dict, AfterValidator(check_json)]


def check_moment(moment: datetime) -> datetime:
    """``moment`` in UTC if it lies in the years 1970 to 9999, else ValueError.

    Outside them, arithmetic on the moment (a window before it) or its conversion to UTC fails.
    """
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EPOCH <= utc <= LATEST_MOMENT:
        raise ValueError("must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    return utc


# A moment a client names (a date parameter): RFC 3339 with an offset, in the years 1970–9999.
ApiMoment = Annotated[AwareDatetime, AfterValidator(check_moment)]


def response_links(*statuses: int, **links: tuple[str, dict[str, str]]) -> dict:
    """``openapi_extra`` declaring OpenAPI links from these answers to the operations that take
    what they return, ``Name=(operationId, {parameter: runtime expression})``: clients, and
    schemathesis's stateful tests, follow a created object to its read, update and delete."""
    described = {
        name: {"operationId": operation_id, "parameters": parameters}
        for name, (operation_id, parameters) in links.items()
    }
    return {"responses": {status: {"links": described} for status in statuses}}


def api_list(objects: Sequence) -> dict:
    """A list answer of objects that have ``to_api()``."""
    return {"items": [item.to_api() for item in objects], "count": len(objects)}
