"""The shipped rules describe themselves to an operator: what they watch and why the
thresholds, never the documents Vigil was built from (migration 0007)."""

import importlib
import re

import pytest
from django.apps import apps

from alerts.models import AlertRule

pytestmark = pytest.mark.django_db

migration = importlib.import_module("alerts.migrations.0007_rule_descriptions_for_operators")
UNSEEN_DOCUMENTS = re.compile(r"seed|issue|PRODUCT\.md", re.IGNORECASE)


def shipped_rule(name: str, description: str) -> AlertRule:
    """The shipped rule (made by migration 0003, unless a test before emptied the table)
    with ``description``."""
    rule, _ = AlertRule.objects.update_or_create(
        name=name,
        defaults={"metric": "m", "warning_threshold": 1, "description": description},
    )
    return rule


def test_no_shipped_description_names_a_document_the_operator_never_saw():
    for name, (_, rewritten) in migration.DESCRIPTIONS.items():
        assert not UNSEEN_DOCUMENTS.search(rewritten), name


def test_the_migration_rewrites_a_description_as_shipped():
    shipped, rewritten = migration.DESCRIPTIONS["High CPU usage"]
    rule = shipped_rule("High CPU usage", shipped)

    migration.for_operators(apps, None)

    rule.refresh_from_db()
    assert rule.description == rewritten
    assert "80 %" in rule.description and "2 minutes" in rule.description


def test_the_migration_keeps_a_description_an_admin_wrote():
    rule = shipped_rule("High disk usage", "Ours.")

    migration.for_operators(apps, None)

    rule.refresh_from_db()
    assert rule.description == "Ours."


def test_the_rules_page_shows_no_seed(admin_client):
    shipped, _ = migration.DESCRIPTIONS["HighErrorRate"]
    shipped_rule("HighErrorRate", shipped)
    migration.for_operators(apps, None)

    html = admin_client.get("/rules/").text

    assert "Server errors" in html and not UNSEEN_DOCUMENTS.search(html)
