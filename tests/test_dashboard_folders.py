"""Folders on the dashboards list: set in a dashboard's settings (or taken from Grafana's export),
shown beside each title, and a filter."""

import orjson
import pytest

from dashboard.models import Dashboard
from tests.test_dashboard_boards import operator, viewer  # noqa: F401

pytestmark = pytest.mark.django_db


def dashboard_in(title: str, folder: str) -> Dashboard:
    return Dashboard.create_from_dict({"title": title, "folder": folder}, owner=None)


def test_the_list_filters_by_folder(viewer):  # noqa: F811
    dashboard_in("Checkout", "Payments")
    dashboard_in("Fraud", "Payments")
    dashboard_in("Search", "Discovery")

    response = viewer.get("/dashboards/", {"folder": "Payments"})

    assert [board.title for board in response.context["dashboards"]] == ["Checkout", "Fraud"]
    assert list(response.context["all_folders"]) == ["Discovery", "Payments"]
    assert '<a href="?folder=Payments">Payments</a>' in response.text


def test_a_dashboard_s_settings_put_it_in_a_folder(operator):  # noqa: F811
    board = dashboard_in("Checkout", "")

    operator.post(
        f"/dashboards/{board.pk}/edit/",
        {"title": "Checkout", "folder": "Payments", "time_range": "1h", "refresh": "off"},
    )

    board.refresh_from_db()
    assert board.folder == "Payments"
    assert board.to_dict()["folder"] == "Payments"


def test_a_grafana_export_keeps_its_folder(operator):  # noqa: F811
    exported = {
        "dashboard": {"title": "Checkout", "schemaVersion": 39, "panels": []},
        "meta": {"folderTitle": "Payments"},
    }

    operator.post("/dashboards/import/", {"definition": orjson.dumps(exported).decode()})

    assert Dashboard.objects.get(title="Checkout").folder == "Payments"
