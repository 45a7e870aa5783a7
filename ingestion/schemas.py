"""JSON Schemas of request bodies that are parsed by hand (for speed) but documented in OpenAPI."""

LABELS_SCHEMA = {
    "type": "object",
    "maxProperties": 32,
    "additionalProperties": {"type": "string"},
    "description": "Label names match [a-zA-Z_][a-zA-Z0-9_]*.",
}

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
                    "name": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                    "value": {"type": "number"},
                    "unit": {"type": "string", "maxLength": 50},
                    "ts": {
                        "oneOf": [
                            {"type": "integer", "description": "epoch milliseconds"},
                            {"type": "string", "format": "date-time"},
                        ]
                    },
                    "labels": LABELS_SCHEMA,
                },
            },
        },
    },
}
