"""Template filters that write numbers and moments as a person reads them (instances.humanize):
``{{ rule.window|duration }}``, ``{{ value|quantity:unit }}``, ``{{ alert.created_at|moment }}``."""

from datetime import UTC, datetime

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from instances import humanize

register = template.Library()
register.filter("duration", humanize.duration)
register.filter("quantity", humanize.quantity)


@register.filter
def moment(when: datetime | None, empty: str = "never") -> SafeString | str:
    """A ``<time>`` saying how long ago (or until), the exact UTC moment on hover."""
    if when is None:
        return empty
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        when.isoformat(),
        when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        humanize.relative(when),
    )


@register.filter
def percent(share: float | None) -> str:
    """A share as a percentage with two decimals (0.9995: ``99.95%``); empty for None."""
    return "" if share is None else f"{share:.2%}"
