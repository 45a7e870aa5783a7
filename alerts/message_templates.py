"""Per-channel message templates: the words of a notice, written as a Django template.

A channel's template renders the notice's text with the alert, its instance, the notice
(``message``: kind, title, text, severity, links), its group (``group``: its ``labels`` and
its ``alerts``, each with its id, alert_type, severity, instance, message, state, url and
ack_url, a firing one's Acknowledge link; a notice of several alerts has no ``alert``) and
the channel's name in context, as plain values: a template reads them and can call nothing
(``{{ alert.resolve }}`` resolves nothing). Each transport has a safe default and a markup:
HTML-escaping for Telegram's HTML, Slack's three escapes for mrkdwn, none for plain text, so
what agents wrote is shown, never obeyed. A template that fails (or renders nothing) gives way
to the transport's default, and the problem is said where the delivery is logged and in the
preview.

Templates run in an engine of their own with no loaders: ``{% include %}`` and ``{% extends %}``
reach no file and ``{% load %}`` no library.
"""

import logging
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

from django.template import Context, Engine
from django.utils import timezone

from alerts.models import Alert, AlertRule, NotificationChannel
from alerts.transports import MARKUP_ESCAPES, TRANSPORTS, Message, transport_for
from instances.models import Instance

logger = logging.getLogger(__name__)

# Longest text a template may give; a larger one is cut (a loop must not flood a chat).
MAX_RENDERED_CHARS = 10_000

MARKUP_NAMES = {
    "text": "plain text",
    "html": "HTML, with what agents wrote escaped",
    "mrkdwn": "Slack mrkdwn, with what agents wrote escaped",
    "markdown": "Markdown, with what agents wrote escaped",
}

ENGINES = {
    "text": Engine(autoescape=False, libraries={}),
    "html": Engine(autoescape=True, libraries={}),
    # Slack's escapes are &amp; &lt; &gt;: HTML's, less the quotes Slack would show as entities.
    "mrkdwn": Engine(autoescape=True, libraries={}),
    # Markdown has no autoescape: the values are escaped before the template sees them.
    "markdown": Engine(autoescape=False, libraries={}),
}


@dataclass(frozen=True)
class Rendered:
    text: str
    # Why the channel's own template was not used (empty when it was, or when it has none).
    problem: str = ""


def check_syntax(source: str, kind: str) -> None:
    """Raise TemplateSyntaxError if ``source`` is no template for a channel of ``kind``."""
    ENGINES[TRANSPORTS[kind].markup].from_string(source)


def markup_name(kind: str) -> str:
    """How a ``kind`` channel's text is read, in words."""
    return MARKUP_NAMES[TRANSPORTS[kind].markup]


def render(channel: NotificationChannel, alert: Alert | None, message: Message) -> Rendered:
    """The notice's text by the channel's template, or by its transport's default when the
    channel has none or its template fails."""
    transport = transport_for(channel)
    context = {
        **alert_context(alert),
        "message": asdict(message),
        "channel": channel.name,
        "group": {"labels": message.group_labels, "alerts": list(message.alerts)},
    }
    problem = ""
    if channel.message_template.strip():
        try:
            text = _render(channel.message_template, transport.markup, context)
        except Exception as error:  # a template error of any kind: the default still speaks
            problem = (
                f"message template failed ({type(error).__name__}: {error}); sent with the default"
            )
        else:
            if text.strip():
                return Rendered(text)
            problem = "message template rendered nothing; sent with the default"
        logger.warning("channel %s: %s", channel.name, problem)
    return Rendered(_render(transport.default_template, transport.markup, context), problem)


def alert_context(alert: Alert | None) -> dict:
    """What templates see of an alert and its instance: values, no model objects."""
    if alert is None:
        return {"alert": {}, "instance": {}}
    instance, rule = alert.instance, alert.rule
    return {
        "alert": {
            "id": str(alert.pk),
            "alert_type": alert.alert_type,
            "severity": alert.severity,
            "peak_severity": alert.peak_severity or alert.severity,
            "message": alert.message,
            "status": alert.status,
            "source": alert.source,
            "labels": dict(alert.labels or {}),
            "value": alert.value,
            "fingerprint": alert.fingerprint,
            "created_at": alert.created_at,
            "fired_at": alert.fired_at,
            "acknowledged_at": alert.acknowledged_at,
            "resolved_at": alert.resolved_at,
            "silenced": alert.silenced,
            "note": alert.note,
            "rule": {
                "name": rule.name,
                "metric": rule.metric,
                "runbook_url": rule.runbook_url,
            }
            if rule is not None
            else {},
        },
        "instance": {
            "name": instance.name,
            "agent_id": instance.agent_id,
            "type": instance.type,
            "region": instance.region,
            "status": instance.status,
        },
    }


def _escaped(value, escape):
    """``value`` with every string in it escaped, but links (keys ending in ``url``): Vigil
    made those, and an escaped link no longer leads anywhere."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {
            key: item if str(key).endswith("url") else _escaped(item, escape)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_escaped(item, escape) for item in value]
    return value


def _render(source: str, markup: str, context: dict) -> str:
    if markup == "markdown":
        context = _escaped(context, MARKUP_ESCAPES[markup])
    engine = ENGINES[markup]
    # A Context escapes unless told otherwise, whatever its engine says.
    text = engine.from_string(source).render(Context(context, autoescape=engine.autoescape))
    text = text.strip()
    if markup == "mrkdwn":
        text = text.replace("&quot;", '"').replace("&#x27;", "'")
    return text[:MAX_RENDERED_CHARS]


def templated(
    channel: NotificationChannel, alert: Alert | None, message: Message
) -> tuple[Message, str]:
    """``message`` with its text as the channel's template renders it, and why the channel's
    own template was not used (empty if it was). A group's notice of several alerts has no
    ``alert``: its template reads ``group``. Test notices keep their words."""
    if message.kind == "test":
        return message, ""
    rendered = render(channel, alert, message)
    return replace(message, text=rendered.text, text_is_markup=True), rendered.problem


def sample_alert(resolved: bool = False) -> Alert:
    """An alert to preview templates with, never saved: a critical CPU alert on web-1, firing
    or resolved just now."""
    now = timezone.now()
    instance = Instance(agent_id="web-1", name="web-1", type="web", region="eu-west")
    rule = AlertRule(name="CPU usage high", metric="cpu_usage", runbook_url="")
    return Alert(
        instance=instance,
        rule=rule,
        source=Alert.Source.RULE,
        alert_type="CPU usage high",
        severity=Alert.Severity.CRITICAL,
        message="cpu_usage avg over 5m is 97.2 % (> 90 %)",
        fingerprint="0" * 64,
        labels={"instance": "web-1", "job": "node"},
        value=97.2,
        pending_since=now - timedelta(minutes=4),
        fired_at=now - timedelta(minutes=2),
        created_at=now - timedelta(minutes=4),
        status=Alert.Status.RESOLVED if resolved else Alert.Status.ACTIVE,
        resolved_at=now if resolved else None,
    )


@dataclass(frozen=True)
class Preview:
    kind: str
    title: str
    text: str
    problem: str


def preview(channel: NotificationChannel) -> list[Preview]:
    """What the channel's template makes of a firing and a resolved notice of a sample alert."""
    alert = sample_alert()
    previews = []
    for kind, title, text in (
        ("firing", "[FIRING] [CRITICAL] CPU usage high on web-1", alert.message),
        ("resolved", "[RESOLVED] CPU usage high on web-1", "Recovered: cpu_usage is 41 %."),
    ):
        message = Message(
            kind=kind,
            title=title,
            text=text,
            severity=alert.severity,
            alert_id="preview",
            fingerprint=alert.fingerprint,
            instance=alert.instance.name,
            url="https://vigil.example.com/alerts/preview/",
            ack_url="https://vigil.example.com/alerts/ack/preview/" if kind == "firing" else "",
        )
        rendered = render(channel, sample_alert(resolved=kind == "resolved"), message)
        previews.append(Preview(kind, title, rendered.text, rendered.problem))
    return previews
