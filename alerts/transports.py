"""Notification transports: one small class per channel kind.

Each shapes its payload from a Message and interprets the answer; HttpTransport does the HTTP.
Failures raise TransportError, which says whether trying again can help; retrying is the
delivery task's job (alerts/tasks.py), so every attempt is logged as a Notification row.
"""

import hashlib
import hmac
import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.mail import send_mail

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


class Transport:
    def __init__(self, channel):
        self.channel = channel

    def notify(self, message: Message) -> Delivery:
        """Deliver ``message``; return what the receiver answered."""
        raise NotImplementedError


class Email(Transport):
    def notify(self, message: Message) -> Delivery:
        recipients = [address.strip() for address in self.channel.target.split(",")]
        try:
            accepted = send_mail(
                subject=message.title,
                message="\n\n".join(message.lines()),
                from_email=None,
                recipient_list=[address for address in recipients if address],
            )
        except smtplib.SMTPRecipientsRefused as error:
            raise TransportError(f"recipients refused: {error}", permanent=True) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransportError(f"mail server: {error}") from error
        return Delivery(None, f"the mail server took {accepted} message(s)")


class HttpTransport(Transport):
    """POST a JSON payload; 2xx is delivered, 429 and 5xx and network errors are worth a retry,
    other 4xx are not."""

    def url(self) -> str:
        return self.channel.target

    def payload(self, message: Message) -> dict:
        raise NotImplementedError

    def headers(self, body: bytes) -> dict:
        return {}

    def notify(self, message: Message) -> Delivery:
        body = json.dumps(self.payload(message)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Vigil", **self.headers(body)}
        request = urllib.request.Request(self.url(), data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(
                request, timeout=settings.NOTIFICATION_TIMEOUT_SECONDS
            ) as response:
                return Delivery(response.status, read_answer(response))
        except urllib.error.HTTPError as error:
            code = error.code
            transient = code == 429 or code >= 500
            raise TransportError(
                f"{self.url()} answered {code}",
                permanent=not transient,
                response_code=code,
                answer=read_answer(error),
            ) from error
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            raise TransportError(f"{self.url()}: {error}") from error
        except ValueError as error:  # a malformed URL
            raise TransportError(f"bad URL {self.url()!r}: {error}", permanent=True) from error


class Webhook(HttpTransport):
    """Any receiver: the message as JSON, signed with the channel's secret.

    ``X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body>`` (as GitHub signs webhooks).
    """

    def payload(self, message: Message) -> dict:
        return {"version": 1, **asdict(message)}

    def headers(self, body: bytes) -> dict:
        if not self.channel.secret:
            return {}
        digest = hmac.new(self.channel.secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Vigil-Signature": f"sha256={digest}"}


class Slack(HttpTransport):
    """Slack incoming webhook: ``text`` (the fallback) and Block Kit ``blocks``."""

    def payload(self, message: Message) -> dict:
        buttons = [{"type": "button", "text": _plain("Open alert"), "url": message.url}]
        if message.ack_url:
            buttons.append(
                {"type": "button", "text": _plain("Acknowledge"), "url": message.ack_url}
            )
        return {
            "text": f"{message.title}: {message.text}",
            "blocks": [
                {"type": "header", "text": _plain(message.title[:150])},
                {"type": "section", "text": {"type": "mrkdwn", "text": message.text}},
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
    def url(self) -> str:
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


TRANSPORTS = {
    "email": Email,
    "slack": Slack,
    "google_chat": GoogleChat,
    "pagerduty": PagerDuty,
    "webhook": Webhook,
}


def transport_for(channel) -> Transport:
    return TRANSPORTS[channel.kind](channel)
