"""The Alertmanager API v2's routes; the project's URLconf wraps each view in its
authentication."""

from django.urls import path

from alerts import alertmanager


def routes(wrap) -> list:
    return [
        path("alerts", wrap(alertmanager.alerts), name="alertmanager-alerts"),
        path("silences", wrap(alertmanager.silences), name="alertmanager-silences"),
        path("silence/<str:silence_id>", wrap(alertmanager.silence), name="alertmanager-silence"),
        path("status", wrap(alertmanager.status), name="alertmanager-status"),
    ]
