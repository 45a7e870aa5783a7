"""JSON Schemas of request bodies that are parsed by hand (for speed) but documented in OpenAPI."""


def json_request_body(schema: dict) -> dict:
    """``openapi_extra`` documenting a required JSON body that the view parses by hand."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


LABELS_SCHEMA = {
    "type": "object",
    "maxProperties": 32,
    "additionalProperties": {"type": "string"},
    "description": "Label names match [a-zA-Z_][a-zA-Z0-9_]*.",
}

METRIC_NAME_SCHEMA = {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"}
TIMESTAMP_SCHEMA = {
    "oneOf": [
        {"type": "integer", "description": "epoch milliseconds"},
        {"type": "string", "format": "date-time"},
    ]
}
UNIT_SCHEMA = {"type": "string", "maxLength": 50}

NATIVE_BATCH_SCHEMA = {
    "type": "object",
    "required": ["instance"],
    "properties": {
        "instance": {
            "type": "object",
            "required": ["agent_id"],
            "properties": {
                "agent_id": {"type": "string", "maxLength": 200},
                "name": {"type": "string", "maxLength": 200},
                "type": {"type": "string", "maxLength": 100},
                "region": {"type": "string", "maxLength": 100},
                "endpoint": {"type": "string", "maxLength": 500},
                "metadata": {"type": "object"},
            },
        },
        "samples": {
            "type": "array",
            "maxItems": 10000,
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "properties": {
                    "name": METRIC_NAME_SCHEMA,
                    "value": {"type": "number"},
                    "unit": UNIT_SCHEMA,
                    "ts": TIMESTAMP_SCHEMA,
                    "labels": LABELS_SCHEMA,
                },
            },
        },
    },
}

SEED_METRIC_SCHEMA = {
    "type": "object",
    "required": ["instanceId", "metricName", "metricValue"],
    "properties": {
        "instanceId": {
            "type": "string",
            "maxLength": 200,
            "description": "The instance's uuid or agent id; a new agent id registers it.",
        },
        "metricName": METRIC_NAME_SCHEMA,
        "metricValue": {"type": "number"},
        "unit": UNIT_SCHEMA,
        "timestamp": TIMESTAMP_SCHEMA,
        "tags": LABELS_SCHEMA,
    },
}

SEED_METRICS_SCHEMA = {
    "oneOf": [SEED_METRIC_SCHEMA, {"type": "array", "maxItems": 10000, "items": SEED_METRIC_SCHEMA}]
}
