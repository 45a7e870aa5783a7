from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from alerts.forms import format_duration

register = template.Library()


@register.filter
def ago(moment):
    """ "just now" within a minute, else "5 minutes ago" (timesince says "0 minutes")."""
    if moment is None:
        return "never"
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"


# A rule's window and ``for`` as the rule form takes them: "2m", "1h30m".
register.filter("rule_duration", format_duration)
