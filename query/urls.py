"""The Prometheus HTTP query API's routes; the project's URLconf wraps each view in its
authentication."""

from django.urls import path

from query import http_api


def routes(wrap) -> list:
    return [
        path("query", wrap(http_api.query), name="prometheus-query"),
        path("query_range", wrap(http_api.query_range), name="prometheus-query-range"),
        path("series", wrap(http_api.series), name="prometheus-series"),
        path("labels", wrap(http_api.labels), name="prometheus-labels"),
        path(
            "label/<str:name>/values", wrap(http_api.label_values), name="prometheus-label-values"
        ),
        path("metadata", wrap(http_api.metadata), name="prometheus-metadata"),
        path("status/buildinfo", wrap(http_api.buildinfo), name="prometheus-buildinfo"),
    ]
