"""The dashboard's part of the REST API: the seed-compatible analytics (PRODUCT.md 5.2), the
dashboard's summary and per-metric aggregates over a time range; and annotations, the deploy
markers (and other moments) time charts draw, posted with a manage-scoped token."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError

from accounts.models import AuditEvent
from alerts.models import Alert
from api.auth import manage_scope
from api.formats import MAX_LIST_LIMIT, ApiMoment, api_list, response_links
from dashboard.models import (
    ANNOTATION_MAX_TAGS,
    ANNOTATION_TEXT_MAX_LENGTH,
    TAG_MAX_LENGTH,
    Annotation,
)
from instances import store
from instances.formats import iso8601
from instances.models import Instance
from instances.samples import samples_engine

router = Router(tags=["analytics"])

# Series whose latest values make ``avgLatency``: what agents and exporters name response times.
LATENCY_METRICS = ("latency", "response_time", "http_request_duration_ms")
RECENT_ALERTS = 10
RECENT_METRICS = 20
DEFAULT_WINDOW = timedelta(hours=24)


class AnalyticsQuery(Schema):
    startDate: ApiMoment | None = None
    endDate: ApiMoment | None = None
    instanceId: str | None = None
    metricName: str | None = None

    def window(self) -> tuple[datetime, datetime]:
        """``[start, end)``: by default the 24 hours up to ``endDate``, which defaults to now;
        a longer range than ``ANALYTICS_MAX_RANGE_DAYS`` is cut to that many days up to its
        end (the answer's ``startDate`` says so)."""
        end = self.endDate or timezone.now()
        start = self.startDate or end - DEFAULT_WINDOW
        if start >= end:
            raise ValidationError(
                [{"loc": ("query", "startDate"), "msg": "must be before endDate"}]
            )
        return max(start, end - timedelta(days=settings.ANALYTICS_MAX_RANGE_DAYS)), end


def summary(now: datetime) -> dict:
    """The dashboard's counts, in two queries, and the average latest latency (0 without any)."""
    healthy = Q(status=Instance.Status.HEALTHY)
    instances = Instance.objects.aggregate(total=Count("pk"), healthy=Count("pk", filter=healthy))
    critical = Q(severity=Alert.Severity.CRITICAL)
    alerts = Alert.objects.filter(status=Alert.Status.ACTIVE).aggregate(
        active=Count("pk"), critical=Count("pk", filter=critical)
    )
    latencies = [
        latest.value
        for latest in store.latest_values(names=LATENCY_METRICS, since=now - DEFAULT_WINDOW)
    ]
    return {
        "totalInstances": instances["total"],
        "healthyInstances": instances["healthy"],
        "activeAlerts": alerts["active"],
        "criticalAlerts": alerts["critical"],
        "avgLatency": sum(latencies) / len(latencies) if latencies else 0,
    }


@router.get("/analytics/dashboard", response={200: dict}, summary="The dashboard at a glance")
def dashboard(request):
    now = timezone.now()
    recent_metrics = samples_engine().recent_samples(
        start=now - DEFAULT_WINDOW, limit=RECENT_METRICS
    )
    return {
        "summary": summary(now),
        "instances": api_list(Instance.objects.all()[:MAX_LIST_LIMIT])["items"],
        "recentAlerts": api_list(Alert.objects.all()[:RECENT_ALERTS])["items"],
        "recentMetrics": api_list(recent_metrics)["items"],
    }


@router.get(
    "/analytics",
    response={200: dict},
    summary="Count, min, max, avg and latest of each instance's metrics over a time range",
)
def analytics(request, query: Query[AnalyticsQuery]):
    start, end = query.window()
    names = None if query.metricName is None else [query.metricName]
    aggregates = samples_engine().metric_aggregates(
        start, end, Instance.ids_named_by(query.instanceId), names
    )
    return {"startDate": iso8601(start), "endDate": iso8601(end), **api_list(aggregates)}


class AnnotationIn(Schema):
    text: str = Field(min_length=1, max_length=ANNOTATION_TEXT_MAX_LENGTH)
    tags: list[Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH)]] = Field(
        default_factory=list, max_length=ANNOTATION_MAX_TAGS
    )
    # Default: now.
    time: ApiMoment | None = None
    # A span's end; none for a moment.
    timeEnd: ApiMoment | None = None


class AnnotationsQuery(Schema):
    startDate: ApiMoment | None = None
    endDate: ApiMoment | None = None
    tag: list[str] = Field(default_factory=list)


@router.post(
    "/annotations",
    response={201: dict},
    auth=manage_scope,
    tags=["annotations"],
    summary="Mark a moment (a deploy, say) on the time charts",
    openapi_extra=response_links(
        201,
        DeleteAnnotation=(
            "dashboard_api_delete_annotation",
            {"annotation_id": "$response.body#/id"},
        ),
    ),
)
def create_annotation(request, payload: AnnotationIn):
    """Dashboards whose annotation tags share one of ``tags`` draw it (those without annotation
    tags draw every annotation)."""
    time = payload.time or timezone.now()
    if payload.timeEnd is not None and payload.timeEnd < time:
        raise ValidationError([{"loc": ("body", "payload", "timeEnd"), "msg": "before time"}])
    annotation = Annotation.objects.create(
        time=time,
        time_end=payload.timeEnd,
        text=payload.text,
        tags=list(dict.fromkeys(payload.tags)),
        posted_by=request.auth.name,
    )
    return Status(201, annotation.to_dict())


@router.get(
    "/annotations",
    response={200: dict},
    tags=["annotations"],
    summary="Annotations over a time range (default the last 24 hours), by tag",
)
def list_annotations(request, query: Query[AnnotationsQuery]):
    end = query.endDate or timezone.now()
    start = query.startDate or end - DEFAULT_WINDOW
    found = Annotation.objects.filter(time__gte=start, time__lte=end)
    if query.tag:
        found = found.filter(tags__overlap=query.tag)
    items = [annotation.to_dict() for annotation in found[:MAX_LIST_LIMIT]]
    return {"items": items, "count": len(items)}


@router.delete(
    "/annotations/{annotation_id}",
    response={204: None},
    auth=manage_scope,
    tags=["annotations"],
    summary="Delete an annotation",
)
def delete_annotation(request, annotation_id: str):
    try:
        annotation = Annotation.objects.get(pk=uuid.UUID(annotation_id))
    except (ValueError, Annotation.DoesNotExist):
        raise Http404(f"no annotation {annotation_id!r}") from None
    with transaction.atomic():
        AuditEvent.record(request.auth.name, "annotation.delete", annotation)
        annotation.delete()
    return Status(204, None)
