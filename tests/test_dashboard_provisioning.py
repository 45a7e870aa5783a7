"""Dashboards as code: DASHBOARDS_DIR's files (Vigil's export or Grafana's JSON model) loaded by
`manage.py provision_dashboards`, idempotently, a changed file as a new version, a bad file
refused without stopping the others; provisioned dashboards are read-only in the UI."""

from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command

from dashboard.models import Dashboard
from tests.test_dashboard_boards import CPU, operator  # noqa: F401
from tests.test_dashboard_grafana import GRAFANA

pytestmark = pytest.mark.django_db

WEB = {
    "title": "Web",
    "tags": ["web"],
    "panels": [{"type": "stat", "title": "CPU", "queries": [CPU], "y": 0}],
}


def provision(directory) -> str:
    out = StringIO()
    call_command("provision_dashboards", str(directory), stdout=out)
    return out.getvalue()


def test_files_are_loaded_once_and_a_changed_file_is_a_new_version(tmp_path):
    (tmp_path / "web.json").write_bytes(orjson.dumps(WEB))
    (tmp_path / "node.json").write_bytes(orjson.dumps({"dashboard": GRAFANA}))

    first = provision(tmp_path)
    again = provision(tmp_path)
    (tmp_path / "web.json").write_bytes(orjson.dumps({**WEB, "title": "Web tier"}))
    changed = provision(tmp_path)

    assert "node.json: created" in first and "web.json: created" in first
    # What Grafana's JSON lost is said at each load.
    assert "heatmap panels are not drawn by Vigil" in first
    assert "node.json: unchanged" in again and "web.json: unchanged" in again
    assert "node.json: unchanged" in changed and "web.json: updated" in changed
    web = Dashboard.objects.get(provisioned_from="web.json")
    assert (web.title, web.version, web.versions.get().data["title"]) == ("Web tier", 2, "Web")
    assert Dashboard.objects.get(provisioned_from="node.json").version == 1


def test_a_bad_file_is_refused_and_the_others_still_load(tmp_path):
    (tmp_path / "a-broken.json").write_text("{not json")
    (tmp_path / "b-web.json").write_bytes(orjson.dumps(WEB))

    with pytest.raises(CommandError):
        call_command("provision_dashboards", str(tmp_path), stdout=StringIO())

    assert Dashboard.objects.filter(provisioned_from="b-web.json").exists()
    assert not Dashboard.objects.filter(provisioned_from="a-broken.json").exists()


def test_a_provisioned_dashboard_shows_no_edit_controls_and_refuses_edits(operator, tmp_path):  # noqa: F811
    (tmp_path / "web.json").write_bytes(orjson.dumps(WEB))
    provision(tmp_path)
    board = Dashboard.objects.get(provisioned_from="web.json")
    panel = board.panels.get()

    page = operator.get(f"/dashboards/{board.pk}/")
    edits = [
        operator.get(f"/dashboards/{board.pk}/edit/"),
        operator.post(f"/dashboards/{board.pk}/delete"),
        operator.post(f"/dashboards/{board.pk}/panels/new/"),
        operator.post(f"/dashboards/{board.pk}/panels/{panel.pk}/arrange", {"op": "duplicate"}),
        operator.post(f"/dashboards/{board.pk}/panels/{panel.pk}/delete"),
    ]

    assert "Provisioned from <code>web.json</code>" in page.text
    assert "Add panel" not in page.text and "panel-menu" not in page.text
    assert [response.status_code for response in edits] == [403] * 5
    assert board.panels.count() == 1 and board.versions.count() == 0
