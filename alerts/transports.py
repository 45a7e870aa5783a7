"""Notification transports: one small class per channel kind.

Each shapes its payload from a Message and interprets the answer; HttpTransport does the HTTP.
Failures raise TransportError, which says whether trying again can help; retrying is the
delivery task's job (alerts/tasks.py), so every attempt is logged as a Notification row.
"""

import hashlib
import hmac
import html
import json
import re
import smtplib
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.utils.html import strip_tags

# How much of a receiver's answer is kept to show (the Channels page's "send test").
ANSWER_SHOWN_CHARS = 500


class TransportError(Exception):
    def __init__(
        self,
        message: str,
        permanent: bool = False,
        response_code: int | None = None,
        answer: str = "",
    ):
        super().__init__(message)
        self.message, self.permanent, self.response_code = message, permanent, response_code
        self.answer = answer


@dataclass(frozen=True)
class Delivery:
    """What the receiver answered: its status code (None for mail) and the start of its body."""

    response_code: int | None
    answer: str = ""


def read_answer(response) -> str:
    """The start of an HTTP response's body, as text."""
    try:
        return response.read(ANSWER_SHOWN_CHARS * 4).decode(errors="replace")[:ANSWER_SHOWN_CHARS]
    except OSError:
        return ""


@dataclass(frozen=True)
class Message:
    """What a notice says, whatever carries it."""

    kind: str  # firing, repeat, resolved, test
    title: str
    text: str
    severity: str
    alert_id: str
    fingerprint: str
    instance: str
    url: str
    ack_url: str = ""
    runbook_url: str = ""
    timestamp: str = ""
    # The text is already in its transport's markup (a channel template rendered it, escaping
    # what agents wrote); otherwise it is plain and the transport escapes it.
    text_is_markup: bool = False
    # The labels its group shares, and its alerts (one, unless alerts are grouped): each
    # {id, alert_type, severity, instance, message, state (firing or resolved), url, ack_url
    # (a firing one's Acknowledge link, else "")}. A group's title and text name them all, so
    # every transport shows the list.
    group_labels: dict = field(default_factory=dict)
    alerts: tuple = ()

    @property
    def is_resolved(self) -> bool:
        return self.kind == "resolved"

    def lines(self) -> list[str]:
        lines = [self.text, f"Alert: {self.url}"]
        if self.ack_url:
            lines.append(f"Acknowledge: {self.ack_url}")
        if self.runbook_url:
            lines.append(f"Runbook: {self.runbook_url}")
        return lines


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space: fit for a mail
    subject or a title, where a line break would end the header or the field."""
    return " ".join(text.split())


def slack_escape(text: str) -> str:
    """``text`` shown as written in Slack mrkdwn: ``<!channel>`` or ``<https://…|label>`` in an
    agent's words neither pings anyone nor becomes a link (Slack's three escapes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Markdown that turns words into links or formatting (Discord): a backslash shows it as written.
MARKDOWN_SPECIALS = re.compile(r"([\\*_~`|\[\]()<>])")


def markdown_escape(text: str) -> str:
    """``text`` shown as written in Discord's markdown: ``[your bank](https://…)`` in an agent's
    words stays text, not a masked link."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", text)


MARKUP_ESCAPES = {
    "text": str,
    "html": html.escape,
    "mrkdwn": slack_escape,
    "markdown": markdown_escape,
}

# A notice's words by default: what the alert says (its message, or how it recovered).
DEFAULT_TEMPLATE = "{{ message.text }}"


class Transport:
    # How the receiver reads the text: plain, HTML (Telegram) or Slack's mrkdwn.
    markup = "text"
    default_template = DEFAULT_TEMPLATE

    def __init__(self, channel):
        self.channel = channel

    def body(self, message: Message) -> str:
        """The notice's text in this transport's markup."""
        return message.text if message.text_is_markup else MARKUP_ESCAPES[self.markup](message.text)

    def notify(self, message: Message) -> Delivery:
        """Deliver ``message``; return what the receiver answered."""
        raise NotImplementedError


class Email(Transport):
    def notify(self, message: Message) -> Delivery:
        try:
            accepted = send_mail(
                subject=one_line(message.title),
                message="\n\n".join([self.body(message), *message.lines()[1:]]),
                from_email=None,
                recipient_list=self.channel.email_addresses,
            )
        except smtplib.SMTPRecipientsRefused as error:
            raise TransportError(f"recipients refused: {error}", permanent=True) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransportError(f"mail server: {error}") from error
        return Delivery(None, f"the mail server took {accepted} message(s)")


class HttpTransport(Transport):
    """POST a JSON payload; 2xx is delivered, 429 and 5xx and network errors are worth a retry,
    other 4xx are not."""

    # The provider's public API, used when the channel names no URL of its own.
    default_url = ""

    def base_url(self) -> str:
        return (self.channel.target or self.default_url).rstrip("/")

    def url(self, message: Message) -> str:
        return self.channel.target

    def shown_url(self, message: Message) -> str:
        """The URL as errors name it (Telegram's carries the bot token)."""
        return self.url(message)

    def payload(self, message: Message) -> dict:
        raise NotImplementedError

    def headers(self, body: bytes) -> dict:
        return {}

    def notify(self, message: Message) -> Delivery:
        url, shown = self.url(message), self.shown_url(message)
        if urlsplit(url).scheme not in ("http", "https"):
            raise TransportError(
                f"refused {shown!r}: only http(s) URLs are sent to", permanent=True
            )
        body = json.dumps(self.payload(message)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Vigil", **self.headers(body)}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(
                request, timeout=settings.NOTIFICATION_TIMEOUT_SECONDS
            ) as response:
                return Delivery(response.status, read_answer(response))
        except urllib.error.HTTPError as error:
            code = error.code
            transient = code == 429 or code >= 500
            raise TransportError(
                f"{shown} answered {code}",
                permanent=not transient,
                response_code=code,
                answer=read_answer(error),
            ) from error
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            raise TransportError(f"{shown}: {error}") from error
        except ValueError as error:  # a malformed URL
            raise TransportError(f"bad URL {shown!r}: {error}", permanent=True) from error


class Webhook(HttpTransport):
    """Any receiver: the message as JSON, signed with the channel's secret.

    ``X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body>`` (as GitHub signs webhooks).
    """

    def payload(self, message: Message) -> dict:
        fields = asdict(message)
        del fields["text_is_markup"]
        return {"version": 1, **fields}

    def headers(self, body: bytes) -> dict:
        if not self.channel.secret:
            return {}
        digest = hmac.new(self.channel.secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Vigil-Signature": f"sha256={digest}"}


class Slack(HttpTransport):
    """Slack incoming webhook: ``text`` (the fallback) and Block Kit ``blocks``."""

    markup = "mrkdwn"

    def payload(self, message: Message) -> dict:
        buttons = [{"type": "button", "text": _plain("Open alert"), "url": message.url}]
        if message.ack_url:
            buttons.append(
                {"type": "button", "text": _plain("Acknowledge"), "url": message.ack_url}
            )
        text = self.body(message)
        return {
            "text": f"{slack_escape(message.title)}: {text}",
            "blocks": [
                {"type": "header", "text": _plain(message.title[:150])},
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "elements": buttons},
            ],
        }


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


class GoogleChat(HttpTransport):
    """Google Chat incoming webhook: ``text`` plus a ``cardsV2`` card with link buttons."""

    def payload(self, message: Message) -> dict:
        buttons = [{"text": "Open alert", "onClick": {"openLink": {"url": message.url}}}]
        if message.ack_url:
            buttons.append(
                {"text": "Acknowledge", "onClick": {"openLink": {"url": message.ack_url}}}
            )
        return {
            "text": f"{message.title}: {message.text}",
            "cardsV2": [
                {
                    "cardId": f"vigil-{message.alert_id}",
                    "card": {
                        "header": {"title": message.title, "subtitle": message.instance},
                        "sections": [
                            {
                                "widgets": [
                                    {"textParagraph": {"text": message.text}},
                                    {"buttonList": {"buttons": buttons}},
                                ]
                            }
                        ],
                    },
                }
            ],
        }


class PagerDuty(HttpTransport):
    """PagerDuty Events API v2: trigger while firing, resolve on recovery, one incident per
    fingerprint (the dedup key)."""

    # Vigil's severities are PagerDuty's (critical, error, warning, info).
    def url(self, message: Message) -> str:
        return self.channel.target or settings.PAGERDUTY_EVENTS_URL

    def payload(self, message: Message) -> dict:
        if message.is_resolved:
            return {
                "routing_key": self.channel.secret,
                "event_action": "resolve",
                "dedup_key": message.fingerprint,
            }
        links = [{"href": message.url, "text": "Alert in Vigil"}]
        if message.ack_url:
            links.append({"href": message.ack_url, "text": "Acknowledge in Vigil"})
        if message.runbook_url:
            links.append({"href": message.runbook_url, "text": "Runbook"})
        payload = {
            "summary": f"{message.title}: {message.text}"[:1024],
            "source": message.instance,
            "severity": message.severity,
            "custom_details": {"alert_id": message.alert_id, "kind": message.kind},
        }
        if message.timestamp:
            payload["timestamp"] = message.timestamp
        return {
            "routing_key": self.channel.secret,
            "event_action": "trigger",
            "dedup_key": message.fingerprint,
            "client": "Vigil",
            "client_url": message.url,
            "payload": payload,
            "links": links,
        }


# Chat colours by severity, and green for a recovery (Discord's embed colour is an RGB integer).
SEVERITY_COLOURS = {"critical": 0xD7263D, "error": 0xE8590C, "warning": 0xF2A900, "info": 0x3B82F6}
RESOLVED_COLOUR = 0x2F9E44


def _colour(message: Message) -> int:
    return RESOLVED_COLOUR if message.is_resolved else SEVERITY_COLOURS.get(message.severity, 0)


def _link_list(message: Message) -> list[tuple[str, str]]:
    """(label, URL) of the alert, its acknowledge link and its runbook, those that exist."""
    links = [("Open alert", message.url)]
    if message.ack_url:
        links.append(("Acknowledge", message.ack_url))
    if message.runbook_url:
        links.append(("Runbook", message.runbook_url))
    return links


class Teams(HttpTransport):
    """Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is
    received"): a message with one Adaptive Card attachment."""

    def payload(self, message: Message) -> dict:
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {
                    "type": "TextBlock",
                    "text": message.title,
                    "size": "Medium",
                    "weight": "Bolder",
                    "wrap": True,
                    "color": "Good" if message.is_resolved else "Attention",
                },
                {"type": "TextBlock", "text": message.text, "wrap": True},
            ],
            "actions": [
                {"type": "Action.OpenUrl", "title": label, "url": url}
                for label, url in _link_list(message)
            ],
        }
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }


class Discord(HttpTransport):
    """Discord webhook: one embed, coloured by severity; ``allowed_mentions`` empty so an
    agent's ``@everyone`` pings nobody."""

    markup = "markdown"

    def payload(self, message: Message) -> dict:
        links = " · ".join(f"[{label}]({url})" for label, url in _link_list(message)[1:])
        description = self.body(message)[:3900] + (f"\n\n{links}" if links else "")
        embed = {
            "title": one_line(message.title)[:256],
            "description": description,
            "url": message.url,
            "color": _colour(message),
            "footer": {"text": message.instance[:2048]},
        }
        if message.timestamp:
            embed["timestamp"] = message.timestamp
        return {"username": "Vigil", "embeds": [embed], "allowed_mentions": {"parse": []}}


class Telegram(HttpTransport):
    """Telegram Bot API ``sendMessage`` to one chat, as HTML (agent text escaped)."""

    default_url = "https://api.telegram.org"
    markup = "html"
    MAX_CHARS = 4096

    def url(self, message: Message) -> str:
        return f"{self.base_url()}/bot{self.channel.secret}/sendMessage"

    def shown_url(self, message: Message) -> str:
        return f"{self.base_url()}/bot…/sendMessage"

    def fitted_body(self, message: Message, room: int) -> str:
        """The body in at most ``room`` characters. Markup cut anywhere could leave a tag or an
        entity open, which Telegram refuses: a body too long is cut as plain words, escaped."""
        body = self.body(message)
        if len(body) <= room:
            return body
        words = html.unescape(strip_tags(body)) if message.text_is_markup else message.text
        cut = words[: room - 1]
        while len(escaped := html.escape(cut)) > room - 1:
            # Escaping lengthens some characters: shrink by the ratio, at least by one.
            cut = cut[: min(len(cut) - 1, len(cut) * (room - 1) // len(escaped))]
        return html.escape(cut) + "…"

    def payload(self, message: Message) -> dict:
        links = " · ".join(
            f'<a href="{html.escape(url)}">{label}</a>' for label, url in _link_list(message)
        )
        title = f"<b>{html.escape(one_line(message.title)[:256])}</b>"
        room = self.MAX_CHARS - len(title) - len(links) - 3
        return {
            "chat_id": self.channel.config.get("chat_id"),
            "text": f"{title}\n{self.fitted_body(message, room)}\n\n{links}",
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }


class Ntfy(HttpTransport):
    """ntfy: a JSON publish to the server's root URL, with title, priority, tags and buttons;
    the access token (if any) as a bearer token."""

    default_url = "https://ntfy.sh"
    PRIORITIES = {"critical": 5, "error": 4, "warning": 4, "info": 3}

    def url(self, message: Message) -> str:
        return f"{self.base_url()}/"

    def headers(self, body: bytes) -> dict:
        if not self.channel.secret:
            return {}
        return {"Authorization": f"Bearer {self.channel.secret}"}

    def payload(self, message: Message) -> dict:
        return {
            "topic": self.channel.config.get("topic"),
            "title": one_line(message.title),
            "message": message.text,
            "priority": 3 if message.is_resolved else self.PRIORITIES.get(message.severity, 3),
            "tags": ["white_check_mark"] if message.is_resolved else ["rotating_light"],
            "click": message.url,
            "actions": [
                {"action": "view", "label": label, "url": url}
                for label, url in _link_list(message)[1:]
            ],
        }


class Opsgenie(HttpTransport):
    """Opsgenie Alert API: create while firing, close on recovery, one alert per fingerprint
    (the alias); the API key as ``GenieKey``."""

    default_url = "https://api.opsgenie.com"
    PRIORITIES = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}

    def url(self, message: Message) -> str:
        if message.is_resolved:
            alias = quote(message.fingerprint, safe="")
            return f"{self.base_url()}/v2/alerts/{alias}/close?identifierType=alias"
        return f"{self.base_url()}/v2/alerts"

    def headers(self, body: bytes) -> dict:
        return {"Authorization": f"GenieKey {self.channel.secret}"}

    def payload(self, message: Message) -> dict:
        if message.is_resolved:
            return {"source": "Vigil", "user": "Vigil", "note": message.text[:25000]}
        description = "\n".join(
            [message.text, *(f"{label}: {url}" for label, url in _link_list(message))]
        )
        return {
            "message": one_line(message.title)[:130],
            "alias": message.fingerprint[:512],
            "description": description[:15000],
            "source": "Vigil",
            "entity": message.instance[:512],
            "priority": self.PRIORITIES.get(message.severity, "P3"),
            "tags": [message.severity],
            "details": {"alert_id": message.alert_id, "kind": message.kind, "url": message.url},
        }


TRANSPORTS = {
    "email": Email,
    "slack": Slack,
    "google_chat": GoogleChat,
    "teams": Teams,
    "discord": Discord,
    "telegram": Telegram,
    "ntfy": Ntfy,
    "pagerduty": PagerDuty,
    "opsgenie": Opsgenie,
    "webhook": Webhook,
}


def transport_for(channel) -> Transport:
    return TRANSPORTS[channel.kind](channel)
