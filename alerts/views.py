from django.core import signing
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import Role, role_required
from alerts import lifecycle, links
from alerts.models import Alert


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
def acknowledge_link(request, token):
    """The one-click Acknowledge link of a notification, for Operators (anonymous visitors log in
    first and come back here, by middleware).

    GET shows what the link would do and a button; only the POST of that button acknowledges,
    so mail scanners and link previews that fetch the link change nothing. Refuses a link that
    was not signed here (400), and one whose episode is over or that is older than
    ACK_LINK_MAX_AGE_HOURS (410).
    """
    try:
        signed = links.unsign(token)
    except signing.SignatureExpired:
        return _refuse(request, 410, "This link has expired: acknowledge on the alert's page.")
    except signing.BadSignature:
        return _refuse(request, 400, "This link is not valid: it was altered or not made here.")
    alert = Alert.objects.filter(pk=signed.alert_id).select_related("instance").first()
    if signed.action != links.ACKNOWLEDGE or alert is None:
        return _refuse(request, 400, "This link does not name an alert to acknowledge.")
    if not alert.is_open or alert.episode != signed.episode:
        return _refuse(request, 410, "This alert has resolved since the link was sent.", alert)
    if request.method == "GET":
        return render(request, "alerts/acknowledge_confirm.html", {"alert": alert})
    if alert.status == Alert.Status.ACTIVE:
        try:
            note = "Acknowledged from a notification link."
            lifecycle.acknowledge(alert, request.user, note=note)
        except lifecycle.Refused:
            return _refuse(request, 410, "This alert has resolved since the link was sent.", alert)
    return redirect(alert.get_absolute_url())


def _refuse(request, status: int, reason: str, alert=None):
    return render(
        request, "alerts/link_refused.html", {"reason": reason, "alert": alert}, status=status
    )
