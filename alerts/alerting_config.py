"""The whole alerting configuration as one YAML document: alert rules (threshold and PromQL),
recording rules, notification channels, the notification routing tree, inhibition rules and the
silences not yet over.

Each section is a list of entries keyed by what names them (a rule's, a channel's, a route's and
an inhibition rule's ``name``, a recording rule's ``record``, a silence's rule, instance,
matchers, severity and start). A key left out of an entry means the field's default, so an
export writes only what differs from the defaults. Import is declarative and all or nothing:
every entry is judged by the models' own validation (the same as the forms'), refused keys and
values are named by their path, and nothing is stored unless everything is good. What Vigil
holds and the file does not name is left as it is.

The routing tree is the ``routes`` list, depth first: the root (the one entry without a
``parent``) first, each route after its parent, which it names; siblings are tried by their
``position``.

Channel secrets (the secret, a webhook's URL, a chat's options) are exported as references,
``{env: VIGIL_CHANNEL_<NAME>_<FIELD>}``, unless secrets are asked for. On import a reference takes
that environment variable when it is set, else the channel's stored value, so re-importing an
export changes nothing."""

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import yaml
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.template import TemplateSyntaxError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import AuditEvent
from alerts import message_templates
from alerts.forms import PrometheusDurationField, format_duration
from alerts.grouping import RouteTree
from alerts.models import (
    AlertRule,
    InhibitRule,
    NotificationChannel,
    RecordingRule,
    Route,
    Silence,
)
from instances.models import Instance

SECTIONS = ("channels", "rules", "recording_rules", "routes", "inhibit_rules", "silences")
SECRET_REFERENCE_KEY = "env"
# Longer than any rule's window or for, and well inside what the database's intervals hold.
MAX_DURATION = timedelta(days=3650)
# The names audit events give each kind of thing (as the pages' own events do).
AUDIT_NAMES = {
    "alertrule": "rule",
    "recordingrule": "recordingrule",
    "notificationchannel": "channel",
    "silence": "silence",
    "inhibitrule": "inhibitrule",
    "route": "route",
}


class ConfigError(ValueError):
    """The document is refused; ``problems`` are (path, what is wrong) pairs, e.g.
    ``("rules[2].for", "'soon' is not a duration …")``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(self.lines))

    @property
    def lines(self) -> list[str]:
        return [f"{path}: {message}" for path, message in self.problems]


@dataclass
class ImportReport:
    """What an import did, by section and name: ``left`` is what Vigil holds that the file does
    not name (kept as it is)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "left": self.left,
        }


@dataclass(frozen=True)
class Setting:
    """One key of an entry: the model attribute it sets, how its value is written in YAML and
    read back (``read`` raises ValueError with what is wrong)."""

    key: str
    attr: str
    write: Callable = lambda value: value
    read: Callable = lambda value: value


def _duration_read(value) -> timedelta:
    try:
        duration = PrometheusDurationField().to_python(str(value))
    except (ValidationError, OverflowError):
        duration = None
    if duration is None or abs(duration) > MAX_DURATION:
        raise ValueError(f"{value!r} is not a duration (e.g. 90s, 5m, 1h30m; at most 10 years)")
    return duration


def _moment_write(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _moment_read(value) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = parse_datetime(str(value)) if isinstance(value, str) else None
        if moment is None:
            raise ValueError(f"{value!r} is not a date and time (e.g. 2026-01-31T22:00:00Z)")
    if timezone.is_naive(moment):
        raise ValueError(f"{value!r} needs its time zone (Z for UTC)")
    return moment


def _number_read(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _flag_read(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _text_read(value) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not text")
    return str(value)


def _json_read(value):
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError("must be plain data: text, numbers, true/false, lists and maps") from None
    return value


def _map_read(value) -> dict:
    if not isinstance(value, dict):
        raise ValueError("must be a map")
    return _json_read(value)


def _count_read(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number of at least 0")
    return value


def _text_list_read(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of text")
    return value


def _by_key(model: type[models.Model], key: str, what: str) -> tuple[Callable, Callable]:
    """How a reference to another object is written (its ``key``) and read back."""

    def write(obj: models.Model | None) -> str | None:
        return getattr(obj, key) if obj is not None else None

    def read(value) -> models.Model | None:
        if value in (None, ""):
            return None
        found = model.objects.filter(**{key: str(value)}).first()
        if found is None:
            raise ValueError(f"no {what} {value!r}")
        return found

    return write, read


INSTANCE_REFERENCE = _by_key(Instance, "agent_id", "instance with agent id")
RULE_REFERENCE = _by_key(AlertRule, "name", "rule named")


RULE_SETTINGS = [
    Setting("description", "description", read=_text_read),
    Setting("enabled", "enabled", read=_flag_read),
    Setting("runbook_url", "runbook_url", read=_text_read),
    Setting("expr", "expr", read=_text_read),
    Setting("labels", "labels", read=_map_read),
    Setting("annotations", "annotations", read=_map_read),
    Setting("metric", "metric", read=_text_read),
    Setting("label_matchers", "label_matchers", read=_json_read),
    Setting("denominator_matchers", "denominator_matchers", read=_json_read),
    Setting("reduce", "reduce", read=_text_read),
    Setting("scope", "scope", read=_text_read),
    Setting("scope_instance", "scope_instance", *INSTANCE_REFERENCE),
    Setting("scope_value", "scope_value", read=_text_read),
    Setting("aggregation", "aggregation", read=_text_read),
    Setting("window", "window", format_duration, _duration_read),
    Setting("comparator", "comparator", read=_text_read),
    Setting("warning_threshold", "warning_threshold", read=_number_read),
    Setting("critical_threshold", "critical_threshold", read=_number_read),
    Setting("for", "for_duration", format_duration, _duration_read),
    Setting("keep_firing_for", "keep_firing_for", format_duration, _duration_read),
    Setting("no_data", "no_data", read=_text_read),
]
RECORDING_RULE_SETTINGS = [
    Setting("expr", "expr", read=_text_read),
    Setting("labels", "labels", read=_map_read),
    Setting("enabled", "enabled", read=_flag_read),
]
INHIBIT_RULE_SETTINGS = [
    Setting("source_matchers", "source_matchers", read=_json_read),
    Setting("target_matchers", "target_matchers", read=_json_read),
    Setting("equal", "equal", read=_text_list_read),
    Setting("enabled", "enabled", read=_flag_read),
]
ROUTE_SETTINGS = [
    Setting("position", "position", read=_count_read),
    Setting("matchers", "matchers", read=_json_read),
    Setting("group_by", "group_by", read=_text_list_read),
    Setting("group_wait", "group_wait", format_duration, _duration_read),
    Setting("group_interval", "group_interval", format_duration, _duration_read),
    Setting("repeat_interval", "repeat_interval", format_duration, _duration_read),
    Setting("continue", "continue_matching", read=_flag_read),
]
# Sections of things named by one key that refer to nothing else: model, key, settings, label.
SIMPLE_SECTIONS = {
    "recording_rules": (RecordingRule, "record", RECORDING_RULE_SETTINGS, "recording rule"),
    "inhibit_rules": (InhibitRule, "name", INHIBIT_RULE_SETTINGS, "inhibit rule"),
}
CHANNEL_SETTINGS = [
    Setting("kind", "kind", read=_text_read),
    Setting("target", "target", read=_text_read),
    Setting("secret", "secret", read=_text_read),
    Setting("config", "config", read=_map_read),
    Setting("severities", "severities", read=_text_list_read),
    Setting("message_template", "message_template", read=_text_read),
    Setting("enabled", "enabled", read=_flag_read),
]
SILENCE_SETTINGS = [
    Setting("rule", "rule", *RULE_REFERENCE),
    Setting("instance", "instance", *INSTANCE_REFERENCE),
    Setting("matchers", "matchers", read=_json_read),
    Setting("severity", "severity", read=_text_read),
    Setting("starts_at", "starts_at", _moment_write, _moment_read),
    Setting("ends_at", "ends_at", _moment_write, _moment_read),
    Setting("comment", "comment", read=_text_read),
]


def _default_of(model: type[models.Model], attr: str):
    model_field = model._meta.get_field(attr)
    if model_field.is_relation:
        return None
    return model_field.get_default()


def _written(obj: models.Model, settings: list[Setting], keep_defaults: set[str] = frozenset()):
    """The entry's keys whose values differ from the model's defaults (and ``keep_defaults``)."""
    entry = {}
    for setting in settings:
        value = getattr(obj, setting.attr)
        written = setting.write(value) if value is not None else None
        default = _default_of(type(obj), setting.attr)
        default_written = setting.write(default) if default is not None else None
        if setting.key in keep_defaults or written != default_written:
            entry[setting.key] = written
    return entry


def _channel_secret_fields(channel: NotificationChannel) -> list[str]:
    """The fields that are a channel's credentials: its secret, and, but for e-mail, its URL
    (a chat webhook's URL is its key) and its options (a chat id, an ntfy topic)."""
    if channel.kind == NotificationChannel.Kind.EMAIL:
        return ["secret"]
    return ["secret", "target", "config"]


def secret_variable(channel_name: str, key: str) -> str:
    """The environment variable a channel secret's reference names."""
    slug = re.sub(r"[^A-Z0-9]+", "_", channel_name.upper()).strip("_")
    return f"VIGIL_CHANNEL_{slug}_{key.upper()}"


def _channel_entry(channel: NotificationChannel, include_secrets: bool) -> dict:
    entry = {"name": channel.name, **_written(channel, CHANNEL_SETTINGS, {"kind"})}
    if not include_secrets:
        for key in _channel_secret_fields(channel):
            if key in entry:
                entry[key] = {SECRET_REFERENCE_KEY: secret_variable(channel.name, key)}
    return entry


def _rule_entry(rule: AlertRule) -> dict:
    entry = {"name": rule.name, **_written(rule, RULE_SETTINGS)}
    channels = sorted(channel.name for channel in rule.channels.all())
    if channels:
        entry["channels"] = channels
    return entry


def _route_entry(route: Route) -> dict:
    entry = {"name": route.name}
    if route.parent is not None:
        entry["parent"] = route.parent.name
    entry.update(_written(route, ROUTE_SETTINGS))
    channels = sorted(channel.name for channel in route.channels.all())
    if channels:
        entry["channels"] = channels
    return entry


def entry_of(section: str, obj: models.Model, include_secrets: bool = False) -> dict:
    """One thing as its entry in the section of the file (and in the API)."""
    if section == "channels":
        return _channel_entry(obj, include_secrets)
    if section == "rules":
        return _rule_entry(obj)
    if section == "routes":
        return _route_entry(obj)
    if section == "silences":
        return _written(obj, SILENCE_SETTINGS, {"starts_at", "ends_at"})
    model, key, settings, _ = SIMPLE_SECTIONS[section]
    return {key: getattr(obj, key), **_written(obj, settings)}


def export_config(include_secrets: bool = False, now: datetime | None = None) -> dict:
    """The alerting configuration as a document (``dump`` writes it as YAML); silences that are
    over by ``now`` are left out."""
    now = now or timezone.now()
    stored = {
        "channels": NotificationChannel.objects.order_by("name"),
        "rules": AlertRule.objects.select_related("scope_instance")
        .prefetch_related("channels")
        .order_by("name"),
        "recording_rules": RecordingRule.objects.order_by("record"),
        "routes": [route for route, _ in RouteTree().walk()],
        "inhibit_rules": InhibitRule.objects.order_by("name"),
        "silences": Silence.objects.filter(ends_at__gt=now)
        .select_related("rule", "instance")
        .order_by("starts_at", "ends_at", "pk"),
    }
    return {
        section: [entry_of(section, obj, include_secrets) for obj in objects]
        for section, objects in stored.items()
    }


def dump(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


class _Problems:
    """Collects what is wrong, each under its path, so one import names every problem."""

    def __init__(self):
        self.found: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.found.append((path, message))

    def validation(self, path: str, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                where = path if name == "__all__" else f"{path}.{_key_of(name)}"
                for message in messages:
                    self.add(where, message)
        else:
            for message in error.messages:
                self.add(path, message)


def _key_of(attr: str) -> str:
    """The YAML key of a model attribute (``for_duration`` is written ``for``)."""
    return "for" if attr == "for_duration" else attr


def _entries(document: dict, section: str, problems: _Problems) -> list[tuple[str, dict]]:
    entries = document.get(section) or []
    if not isinstance(entries, list):
        problems.add(section, "must be a list")
        return []
    found = []
    for index, entry in enumerate(entries):
        path = f"{section}[{index}]"
        if not isinstance(entry, dict):
            problems.add(path, "must be a map")
            continue
        found.append((path, entry))
    return found


def _apply(
    obj: models.Model, entry: dict, settings: list[Setting], path: str, problems: _Problems
) -> None:
    """Set each setting from the entry (its default where the entry leaves it out)."""
    for setting in settings:
        if setting.key not in entry:
            setattr(obj, setting.attr, _default_of(type(obj), setting.attr))
            continue
        raw = entry[setting.key]
        try:
            value = setting.read(raw) if raw is not None else None
        except ValueError as error:
            problems.add(f"{path}.{setting.key}", str(error))
            continue
        if value is None and not obj._meta.get_field(setting.attr).null:
            value = _default_of(type(obj), setting.attr)
        setattr(obj, setting.attr, value)


def _unknown_keys(entry: dict, allowed: set[str], path: str, problems: _Problems) -> None:
    for key in entry:
        if key not in allowed:
            problems.add(f"{path}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})")


class _Importer:
    def __init__(self, document: dict, actor: str, target: models.Model | None = None):
        """``target``: the one stored thing the document's one entry describes (the API's
        change of a thing by its id), instead of the one its name finds."""
        self.document, self.actor, self.target = document, actor, target
        self.problems = _Problems()
        self.report = ImportReport()
        self.saved: models.Model | None = None

    def _stored(self, model: type[models.Model], **lookup) -> models.Model | None:
        if self.target is not None:
            return self.target
        return model.objects.filter(**lookup).first()

    def run(self) -> ImportReport:
        if not isinstance(self.document, dict):
            raise ConfigError([("(top)", "the document must be a map of " + ", ".join(SECTIONS))])
        for key in self.document:
            if key not in SECTIONS:
                self.problems.add(str(key), f"unknown section (known: {', '.join(SECTIONS)})")
        self.channels()
        self.rules()
        self.routes()
        for section in SIMPLE_SECTIONS:
            self.simple(section)
        self.silences()
        if self.problems.found:
            raise ConfigError(self.problems.found)
        return self.report

    def _save(
        self, label: str, obj: models.Model, before: dict | None, after: dict, path: str
    ) -> bool:
        """Judge ``obj`` as the models do, then store it when it changed (an earlier problem
        rolls it back with the rest); whether it was stored. Where a value of the entry was
        already refused, what the models say of the entry as a whole or of that key only
        follows from it, and is not repeated."""
        reported = {found for found, _ in self.problems.found if found.startswith(f"{path}.")}
        try:
            obj.full_clean()
        except ValidationError as error:
            judged = _Problems()
            judged.validation(path, error)
            self.problems.found += [
                (where, message)
                for where, message in judged.found
                if where not in reported and not (reported and where == path)
            ]
            return False
        if reported:
            return False
        if before == after:
            self.report.unchanged.append(label)
            return False
        obj.save()
        self.saved = obj
        created = before is None
        (self.report.created if created else self.report.updated).append(label)
        action = f"{AUDIT_NAMES[obj._meta.model_name]}.{'create' if created else 'change'}"
        AuditEvent.record(self.actor, action, obj, source="alerting configuration")
        return True

    def _named_entries(
        self, section: str, allowed: set[str], model: type[models.Model], label: str, key="name"
    ) -> Iterator[tuple[str, dict, str]]:
        """Each entry of ``section`` with its path and name (``key``, required), its unknown keys
        reported; once all are read, the stored things the document no longer names are reported
        as left."""
        named = set()
        for path, entry in _entries(self.document, section, self.problems):
            _unknown_keys(entry, allowed, path, self.problems)
            name = entry.get(key)
            if not isinstance(name, str) or not name:
                self.problems.add(f"{path}.{key}", "required")
                continue
            named.add(name)
            yield path, entry, name
        stored = model.objects.values_list(key, flat=True)
        self.report.left += [f"{label} {name}" for name in stored if name not in named]

    def channels(self) -> None:
        allowed = {"name", *(setting.key for setting in CHANNEL_SETTINGS)}
        entries = self._named_entries("channels", allowed, NotificationChannel, "channel")
        for path, entry, name in entries:
            channel = self._stored(NotificationChannel, name=name)
            before = _channel_entry(channel, True) if channel is not None else None
            stored = {}
            if channel is not None:
                stored = {key: getattr(channel, key) for key in ("secret", "target", "config")}
            channel = channel or NotificationChannel()
            channel.name = name
            entry = self._resolve_secrets(entry, stored, path)
            _apply(channel, entry, CHANNEL_SETTINGS, path, self.problems)
            if not isinstance(channel.config, dict):
                self.problems.add(f"{path}.config", "must be a map")
                continue
            if channel.message_template.strip() and channel.kind in NotificationChannel.Kind.values:
                try:
                    message_templates.check_syntax(channel.message_template, channel.kind)
                except TemplateSyntaxError as error:
                    self.problems.add(f"{path}.message_template", f"does not parse: {error}")
            self._save(f"channel {name}", channel, before, _channel_entry(channel, True), path)

    def _resolve_secrets(self, entry: dict, stored: dict, path: str) -> dict:
        """The entry with each ``{env: NAME}`` reference replaced by that variable's value, else
        by the stored channel's value."""
        resolved = dict(entry)
        for key, value in entry.items():
            if not isinstance(value, dict) or set(value) != {SECRET_REFERENCE_KEY}:
                continue
            variable = str(value[SECRET_REFERENCE_KEY])
            if variable in os.environ:
                text = os.environ[variable]
                if key == "config":
                    try:
                        text = json.loads(text)
                    except ValueError:
                        self.problems.add(f"{path}.{key}", f"${variable} is not a JSON object")
                        resolved.pop(key)
                        continue
                resolved[key] = text
            elif key in stored:
                resolved[key] = stored[key]
            else:
                self.problems.add(
                    f"{path}.{key}",
                    f"refers to ${variable}, which is not set, and no channel of this name "
                    "is stored",
                )
                resolved.pop(key)
        return resolved

    def rules(self) -> None:
        allowed = {"name", "channels", *(setting.key for setting in RULE_SETTINGS)}
        for path, entry, name in self._named_entries("rules", allowed, AlertRule, "rule"):
            rule = self._stored(AlertRule, name=name)
            before = _rule_entry(rule) if rule is not None else None
            rule = rule or AlertRule()
            rule.name = name
            _apply(rule, entry, RULE_SETTINGS, path, self.problems)
            channels = self._channels_named(entry.get("channels") or [], f"{path}.channels")
            after = {"name": name, **_written(rule, RULE_SETTINGS)}
            if channels:
                after["channels"] = sorted(channel.name for channel in channels)
            if self._save(f"rule {name}", rule, before, after, path):
                rule.channels.set(channels)

    def _channels_named(self, names, path: str) -> list[NotificationChannel]:
        if not isinstance(names, list):
            self.problems.add(path, "must be a list of channel names")
            return []
        channels = []
        for index, name in enumerate(names):
            channel = NotificationChannel.objects.filter(name=str(name)).first()
            if channel is None:
                self.problems.add(f"{path}[{index}]", f"no channel named {name!r}")
            else:
                channels.append(channel)
        return channels

    def routes(self) -> None:
        """The routing tree, parents before children; the entry without a parent is the root
        (there is one: another is refused)."""
        allowed = {"name", "parent", "channels", *(setting.key for setting in ROUTE_SETTINGS)}
        for path, entry, name in self._named_entries("routes", allowed, Route, "route"):
            parent_name = entry.get("parent")
            route = self._stored(Route, name=name)
            before = _route_entry(route) if route is not None else None
            route = route or Route()
            route.name = name
            route.parent = None
            if parent_name is not None:
                route.parent = Route.objects.filter(name=str(parent_name)).first()
                if route.parent is None:
                    message = f"no route named {parent_name!r} (a parent comes before its routes)"
                    self.problems.add(f"{path}.parent", message)
                    continue
            _apply(route, entry, ROUTE_SETTINGS, path, self.problems)
            channels = self._channels_named(entry.get("channels") or [], f"{path}.channels")
            after = {"name": name, **({"parent": route.parent.name} if route.parent else {})}
            after.update(_written(route, ROUTE_SETTINGS))
            if channels:
                after["channels"] = sorted(channel.name for channel in channels)
            if self._save(f"route {name}", route, before, after, path):
                route.channels.set(channels)

    def simple(self, section: str) -> None:
        """A section of things named by one key with no references to others (recording
        rules, inhibition rules)."""
        model, key, settings, label = SIMPLE_SECTIONS[section]
        allowed = {key, *(setting.key for setting in settings)}
        for path, entry, name in self._named_entries(section, allowed, model, label, key):
            obj = self._stored(model, **{key: name})
            before = {key: name, **_written(obj, settings)} if obj else None
            obj = obj or model()
            setattr(obj, key, name)
            _apply(obj, entry, settings, path, self.problems)
            after = {key: name, **_written(obj, settings)}
            self._save(f"{label} {name}", obj, before, after, path)

    def silences(self) -> None:
        allowed = {setting.key for setting in SILENCE_SETTINGS}
        for path, entry in _entries(self.document, "silences", self.problems):
            _unknown_keys(entry, allowed, path, self.problems)
            for required in ("starts_at", "ends_at"):
                if required not in entry:
                    self.problems.add(f"{path}.{required}", "required")
            silence = Silence()
            _apply(silence, entry, SILENCE_SETTINGS, path, self.problems)
            if silence.starts_at is None or silence.ends_at is None:
                continue
            # A silence is known by what it covers and when it starts: one that matches is
            # the same silence, its end and comment brought up to date.
            same = (
                self.target
                or Silence.objects.filter(
                    rule=silence.rule,
                    instance=silence.instance,
                    severity=silence.severity,
                    starts_at=silence.starts_at,
                    matchers=silence.matchers,
                ).first()
            )
            before = None
            if same is not None:
                before = _written(same, SILENCE_SETTINGS, {"starts_at", "ends_at"})
                for setting in SILENCE_SETTINGS:
                    setattr(same, setting.attr, getattr(silence, setting.attr))
                silence = same
            after = _written(silence, SILENCE_SETTINGS, {"starts_at", "ends_at"})
            label = f"silence from {after['starts_at']} until {after['ends_at']}"
            self._save(label, silence, before, after, path)


def save_entry(
    section: str, entry: dict, actor: str, target: models.Model | None = None
) -> models.Model:
    """Store one entry of ``section`` (as ``target``, else as the thing its name finds, else as
    a new one), judged and audited as an import's; ConfigError's paths are the entry's keys."""
    importer = _Importer({section: [entry]}, actor, target)
    try:
        with transaction.atomic():
            importer.run()
    except ConfigError as error:
        prefix = f"{section}[0]"
        raise ConfigError(
            [(path.removeprefix(prefix).removeprefix(".") or "(entry)", message)
             for path, message in error.problems]
        ) from None  # fmt: skip
    return importer.saved or target


class _LoaderWithoutAliases(yaml.SafeLoader):
    """YAML without aliases: ``*name`` repeats a node without copying it, so a few hundred bytes
    of nested aliases stand for billions of values once written out (as labels are stored)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not taken", mark)
        return super().compose_node(parent, index)


def import_config(text: str, actor: str) -> ImportReport:
    """Create or update what the YAML document describes, all or nothing (ConfigError names
    every problem by its path), audited under ``actor``."""
    try:
        document = yaml.load(text, Loader=_LoaderWithoutAliases)
    except yaml.YAMLError as error:
        raise ConfigError([("(top)", f"not YAML: {error}")]) from None
    with transaction.atomic():
        report = _Importer(document if document is not None else {}, actor).run()
    return report
