"""The Alertmanager API v2 (``/alertmanager/api/v2/``), so Prometheus can send Vigil its
alerts and ``amtool`` can list alerts and manage silences.

Prometheus posts every active alert again at each evaluation, and once more with ``endsAt`` in
the past when it resolves: an alert is one Vigil episode per label set (deduplicated by a
fingerprint of its labels), opened on its first post and resolved by the post that ends it.
Silences are Vigil's, with Alertmanager's matchers as label matchers. Views do not
authenticate: the URL configuration wraps them.
"""

import re
from datetime import UTC, datetime, timedelta

import orjson
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import AuditEvent
from alerts import lifecycle
from alerts.models import (
    Alert,
    Silence,
    fingerprint,
    inhibiting_alerts,
    labels_match,
    parse_severity,
)
from instances.models import Instance

# Alertmanager's version Vigil's answers follow (amtool reads it from /status).
COMPATIBLE_VERSION = "0.25.0"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# amtool's filters: name="value", name!="value", name=~"re", name!~"re".
FILTER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
MAX_ALERTS_PER_POST = 1000
# The GET alerts flags that leave out alerts by state, as in Alertmanager (each true unless
# given false).
LIST_FLAGS = ("active", "silenced", "inhibited")
# Expired silences stay listed this long, as Alertmanager keeps them (its data.retention):
# the list does not grow with every silence ever made.
EXPIRED_SILENCES_LISTED = timedelta(hours=120)


class BadRequest(ValueError):
    pass


def _json(body, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def _bad(message: str) -> HttpResponse:
    # Alertmanager answers refusals with a JSON string.
    return _json(message, 400)


def _time(text, field: str) -> datetime | None:
    if text in (None, ""):
        return None
    if not isinstance(text, str):
        raise BadRequest(f"{field} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field} must be an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Go's zero time ("0001-01-01T00:00:00Z") means "not set".
    return None if moment.year <= 1 else moment


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _text_map(value, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and LABEL_NAME.match(k) and isinstance(v, str) and "\x00" not in v
        for k, v in value.items()
    ):
        raise BadRequest(f"{field} must map label names to text")
    return value


def _body(request: HttpRequest):
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None


def alert_fingerprint(instance: Instance, labels: dict) -> str:
    canonical = "\x00".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return fingerprint(instance.pk, f"prometheus:{canonical}")


def _instance_of(labels: dict, known: dict) -> Instance:
    """The instance an alert's ``instance`` (else ``job``) label names, as remote write reads
    them; an alert with neither is Vigil's own."""
    return Instance.named_by_label(labels.get("instance") or labels.get("job") or "", known)


def receive_alert(raw: dict, silences: list, now: datetime, known: dict) -> None:
    if not isinstance(raw, dict):
        raise BadRequest("each alert is an object")
    labels = _text_map(raw.get("labels"), "labels")
    annotations = _text_map(raw.get("annotations"), "annotations")
    name = labels.get("alertname", "")
    if not name:
        raise BadRequest("an alert needs the alertname label")
    ends_at = _time(raw.get("endsAt"), "endsAt")
    starts_at = _time(raw.get("startsAt"), "startsAt") or now
    instance = _instance_of(labels, known)
    key = alert_fingerprint(instance, labels)
    alert = (
        Alert.objects.select_for_update().filter(fingerprint=key, resolved_at__isnull=True).first()
    )
    if ends_at is not None and ends_at <= now:
        if alert is not None:
            lifecycle.recover(alert, now, note="Prometheus resolved it.")
        return
    if alert is not None:
        return
    try:
        severity = parse_severity(labels.get("severity", "warning"))
    except ValueError:
        severity = Alert.Severity.WARNING
    alert = Alert(
        instance=instance,
        source=Alert.Source.PROMETHEUS,
        alert_type=name[:100],
        severity=severity,
        message=annotations.get("summary") or annotations.get("description") or name,
        fingerprint=key,
        labels=labels,
        created_at=starts_at,
        fired_at=now,
    )
    lifecycle.open_episode(alert, silences, now)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def alerts(request: HttpRequest) -> HttpResponse:
    try:
        if request.method == "GET":
            shown = {state: _flag(request.GET, state) for state in LIST_FLAGS}
            return _json(list_alerts(request.GET.getlist("filter"), **shown))
        body = _body(request)
        if not isinstance(body, list) or len(body) > MAX_ALERTS_PER_POST:
            raise BadRequest(f"the body is a list of at most {MAX_ALERTS_PER_POST} alerts")
        now = timezone.now()
        silences = list(Silence.objects.active(now))
        known = {}
        with transaction.atomic():
            for raw in body:
                receive_alert(raw, silences, now, known)
    except BadRequest as error:
        return _bad(str(error))
    return _json("")


def _parse_filters(filters: list[str]) -> list[dict]:
    matchers = []
    for text in filters:
        found = FILTER.match(text)
        if found is None:
            raise BadRequest(f"bad filter {text!r}")
        matchers.append({"label": found[1], "op": found[2], "value": found[3]})
    return matchers


def _flag(query, name: str) -> bool:
    value = query.get(name, "true").lower()
    if value not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false")
    return value == "true"


def list_alerts(
    filters: list[str], active: bool = True, silenced: bool = True, inhibited: bool = True
) -> list[dict]:
    """The open alerts matching ``filters``, each with what suppresses it (the silences' ids,
    the inhibiting alerts' fingerprints); as in Alertmanager, ``active=false`` leaves out the
    alerts nothing suppresses, ``silenced=false`` the silenced and ``inhibited=false`` the
    inhibited ones (amtool asks for the active ones only unless told ``-s`` or ``-i``)."""
    matchers = _parse_filters(filters)
    now = timezone.now()
    silences = list(Silence.objects.active(now))
    listed = [
        alert
        for alert in Alert.objects.filter(resolved_at__isnull=True).select_related("instance")
        if labels_match(alert.match_labels(), matchers)
    ]
    inhibitors = inhibiting_alerts(listed)
    found = []
    for alert in listed:
        labels = alert.match_labels()
        silenced_by = [str(s.pk) for s in silences if s.covers(alert)]
        inhibited_by = [source.fingerprint[:16] for source in inhibitors.get(alert.pk, [])]
        suppressed = bool(silenced_by or inhibited_by)
        if (
            (not active and not suppressed)
            or (not silenced and silenced_by)
            or (not inhibited and inhibited_by)
        ):
            continue
        found.append({
            "labels": labels,
            "annotations": {"summary": alert.message},
            "startsAt": _iso(alert.fired_at or alert.created_at),
            "endsAt": _iso(now + timedelta(minutes=5)),
            "updatedAt": _iso(now),
            "fingerprint": alert.fingerprint[:16],
            "generatorURL": alert.get_absolute_url(),
            "receivers": [{"name": "vigil"}],
            "status": {
                "state": "suppressed" if suppressed else "active",
                "silencedBy": silenced_by,
                "inhibitedBy": inhibited_by,
            },
        })  # fmt: skip
    return found


def _silence_json(silence: Silence, now: datetime) -> dict:
    state = "expired" if silence.ends_at <= now else (
        "pending" if silence.starts_at > now else "active")  # fmt: skip
    matchers = [
        {
            "name": m["label"],
            "value": m["value"],
            "isRegex": m["op"] in ("=~", "!~"),
            "isEqual": m["op"] in ("=", "=~"),
        }
        for m in silence.matchers
    ]
    return {
        "id": str(silence.pk),
        "matchers": matchers,
        "startsAt": _iso(silence.starts_at),
        "endsAt": _iso(silence.ends_at),
        "updatedAt": _iso(silence.created),
        "createdBy": "vigil",
        "comment": silence.comment,
        "status": {"state": state},
    }


def _matchers_in(raw) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("a silence needs at least one matcher")
    matchers = []
    for item in raw:
        if not isinstance(item, dict) or not LABEL_NAME.match(str(item.get("name", ""))):
            raise BadRequest("a matcher has a label name")
        value = item.get("value")
        if not isinstance(value, str):
            raise BadRequest("a matcher has a text value")
        regex, equal = bool(item.get("isRegex")), item.get("isEqual", True) is not False
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (regex, equal)
        ]
        if regex:
            try:
                re.compile(value)
            except re.error:
                raise BadRequest(f"bad regular expression {value!r}") from None
        matchers.append({"label": item["name"], "op": op, "value": value})
    return matchers


@csrf_exempt
@require_http_methods(["GET", "POST"])
def silences(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    try:
        if request.method == "GET":
            matchers = _parse_filters(request.GET.getlist("filter"))
            return _json([
                _silence_json(silence, now)
                for silence in Silence.objects.filter(ends_at__gte=now - EXPIRED_SILENCES_LISTED)
                if all(m in silence.matchers for m in matchers)
            ])  # fmt: skip
        body = _body(request)
        if not isinstance(body, dict):
            raise BadRequest("a silence is an object")
        starts_at = _time(body.get("startsAt"), "startsAt") or now
        ends_at = _time(body.get("endsAt"), "endsAt")
        if ends_at is None or ends_at <= starts_at:
            raise BadRequest("endsAt must be after startsAt")
        comment = body.get("comment") or ""
        created_by = body.get("createdBy") or ""
        if not isinstance(comment, str) or not isinstance(created_by, str):
            raise BadRequest("comment and createdBy are text")
        fields = {
            "matchers": _matchers_in(body.get("matchers")),
            "starts_at": starts_at,
            "ends_at": ends_at,
            "comment": f"{comment} ({created_by})" if created_by else comment,
        }
        existing = _silence_or_none(body.get("id"))
        if existing is not None:
            Silence.objects.filter(pk=existing.pk).update(**fields)
            silence = existing
        else:
            silence = Silence.objects.create(**fields)
        action = "silence.change" if existing is not None else "silence.create"
        AuditEvent.record(_actor(request), action, silence, request=request)
    except BadRequest as error:
        return _bad(str(error))
    return _json({"silenceID": str(silence.pk)})


def _actor(request: HttpRequest) -> str:
    """Who the audit log names: the API token's name (the URL configuration's wrapper sets
    ``request.auth``)."""
    token = getattr(request, "auth", None)
    return token.name if token is not None else "Alertmanager API"


def _silence_or_none(raw) -> Silence | None:
    if raw in (None, ""):
        return None
    if not str(raw).isdigit():
        raise BadRequest(f"no silence {raw!r}")
    silence = Silence.objects.filter(pk=int(raw)).first()
    if silence is None:
        raise BadRequest(f"no silence {raw!r}")
    return silence


@csrf_exempt
@require_http_methods(["GET", "DELETE"])
def silence(request: HttpRequest, silence_id: str) -> HttpResponse:
    found = Silence.objects.filter(pk=int(silence_id)).first() if silence_id.isdigit() else None
    if found is None:
        return _json(f"silence {silence_id} not found", 404)
    now = timezone.now()
    if request.method == "DELETE":
        lifecycle.expire(found, _actor(request), request=request)
        return _json("")
    return _json(_silence_json(found, now))


@require_http_methods(["GET"])
def status(request: HttpRequest) -> HttpResponse:
    return _json({
        "cluster": {"name": "vigil", "status": "ready", "peers": []},
        "versionInfo": {
            "version": COMPATIBLE_VERSION, "revision": "vigil", "branch": "", "buildUser": "vigil",
            "buildDate": "", "goVersion": "",
        },
        "config": {"original": ""},
        "uptime": _iso(timezone.now()),
    })  # fmt: skip
