"""Prometheus rule files (``groups:`` of alerting and recording rules) read into Vigil's
PromQL alert rules and recording rules."""

from dataclasses import dataclass
from datetime import timedelta

import promql_parser
import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from alerts.models import AlertRule, RecordingRule


class RuleFileError(ValueError):
    pass


@dataclass
class ImportReport:
    created: list[str]
    updated: list[str]


def _duration(text, where: str) -> timedelta:
    if text in (None, ""):
        return timedelta(0)
    try:
        return promql_parser.parse_duration(str(text))
    except (ValueError, TypeError):
        raise RuleFileError(f"{where}: {text!r} is not a duration") from None


def _text_map(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RuleFileError(f"{where} must be a map")
    return {str(key): str(item) for key, item in value.items()}


def import_rules(text: str) -> ImportReport:
    """Create or update (by name) a PromQL rule per alerting rule and a recording rule per
    recording rule of a Prometheus rule file, all or nothing; errors name the group and rule."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RuleFileError(f"not YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        raise RuleFileError("a rule file has a 'groups' list")
    report = ImportReport([], [])
    with transaction.atomic():
        for group in document["groups"]:
            if not isinstance(group, dict) or not isinstance(group.get("rules"), list):
                raise RuleFileError("each group has a 'name' and a 'rules' list")
            for index, entry in enumerate(group["rules"]):
                where = f"group {group.get('name')!r}, rule {index + 1}"
                if not isinstance(entry, dict):
                    raise RuleFileError(f"{where} is not a map")
                if "record" in entry:
                    _import_recording_rule(entry, where, report)
                else:
                    _import_alerting_rule(entry, where, report)
    return report


def _import_recording_rule(entry: dict, where: str, report: ImportReport) -> None:
    name = str(entry["record"])
    _check_keys(entry, RECORDING_KEYS, where)
    rule = RecordingRule.objects.filter(record=name).first() or RecordingRule(record=name)
    created = rule.pk is None
    rule.expr = str(entry.get("expr", ""))
    rule.labels = _text_map(entry.get("labels"), f"{where} 'labels'")
    _save(rule, where, name)
    (report.created if created else report.updated).append(name)


def _save(rule, where: str, name: str) -> None:
    try:
        rule.full_clean()
    except ValidationError as error:
        raise RuleFileError(f"{where} ({name}): {'; '.join(error.messages)}") from None
    rule.save()


# What a rule file's rules may say; anything else would be silently ignored, so it is refused.
ALERTING_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
RECORDING_KEYS = {"record", "expr", "labels"}


def _check_keys(entry: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise RuleFileError(f"{where}: {', '.join(unknown)} not supported by Vigil")


def _import_alerting_rule(entry: dict, where: str, report: ImportReport) -> None:
    name = entry.get("alert")
    if not isinstance(name, str) or not name:
        raise RuleFileError(f"{where} has neither 'alert' nor 'record'")
    _check_keys(entry, ALERTING_KEYS, where)
    rule = AlertRule.objects.filter(name=name).first() or AlertRule(name=name)
    created = rule.pk is None
    rule.expr = str(entry.get("expr", ""))
    rule.for_duration = _duration(entry.get("for"), f"{where} 'for'")
    rule.keep_firing_for = _duration(entry.get("keep_firing_for"), f"{where} 'keep_firing_for'")
    rule.labels = _text_map(entry.get("labels"), f"{where} 'labels'")
    rule.annotations = _text_map(entry.get("annotations"), f"{where} 'annotations'")
    rule.description = rule.annotations.get("description", rule.description)
    _save(rule, where, name)
    (report.created if created else report.updated).append(name)
