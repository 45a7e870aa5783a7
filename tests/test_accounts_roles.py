import pytest
from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, Group
from django.http import HttpResponse
from django.test import RequestFactory

from accounts.models import AuditEvent
from accounts.permissions import (
    Role,
    RoleRequiredConsumer,
    has_role,
    role_required,
    set_role,
    user_role,
)

pytestmark = pytest.mark.django_db


def test_the_three_role_groups_exist_with_their_permissions():
    perms = {
        group.name: sorted(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.filter(name__in=["Viewer", "Operator", "Admin"])
    }

    assert perms == {
        "Viewer": ["view_dashboard"],
        "Operator": ["operate_alerts", "view_dashboard"],
        "Admin": ["manage", "operate_alerts", "view_dashboard"],
    }


def test_a_new_user_joins_as_viewer(django_user_model):
    user = django_user_model.objects.create_user("newcomer", password="x")

    assert user_role(user) == Role.VIEWER
    assert has_role(user, Role.VIEWER)
    assert not has_role(user, Role.OPERATOR)


def test_default_role_none_leaves_new_users_without_a_role(django_user_model, settings):
    settings.DEFAULT_ROLE = "none"

    user = django_user_model.objects.create_user("newcomer", password="x")

    assert user_role(user) is None
    assert not has_role(user, Role.VIEWER)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.VIEWER, {Role.VIEWER}),
        (Role.OPERATOR, {Role.VIEWER, Role.OPERATOR}),
        (Role.ADMIN, {Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    ],
)
def test_each_role_includes_the_ones_below_it(user_with_role, role, expected):
    user = user_with_role(role)

    assert {r for r in Role if has_role(user, r)} == expected


def test_superusers_hold_every_role(django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x")

    assert all(has_role(root, role) for role in Role)


def test_inactive_users_hold_no_role(user_with_role):
    user = user_with_role(Role.ADMIN)
    user.is_active = False

    assert not has_role(user, Role.VIEWER)


def test_setting_a_role_replaces_the_old_one_and_is_audited(user_with_role):
    boss = user_with_role(Role.ADMIN, "boss")
    user = user_with_role(Role.VIEWER, "carol")

    set_role(user, Role.OPERATOR, actor=boss)

    assert list(user.groups.values_list("name", flat=True)) == ["Operator"]
    event = AuditEvent.objects.filter(action="role.change", target_id=str(user.pk)).first()
    assert (event.actor, event.details) == (boss, {"before": "viewer", "after": "operator"})


def test_admins_are_staff_and_lose_it_with_the_role(user_with_role):
    user = user_with_role(Role.ADMIN)
    user.refresh_from_db()
    assert user.is_staff
    assert user.has_perm("ingestion.add_ingesttoken")

    set_role(user, Role.VIEWER)

    user.refresh_from_db()
    assert not user.is_staff
    assert not user.has_perm("ingestion.add_ingesttoken")


def _view(request):
    return HttpResponse("ok")


@pytest.mark.parametrize(
    ("role", "htmx", "status"),
    [(Role.VIEWER, False, 403), (Role.VIEWER, True, 403), (Role.OPERATOR, False, 200)],
)
def test_role_required_answers_403_to_users_without_the_role(user_with_role, role, htmx, status):
    from django.core.exceptions import PermissionDenied
    from django_htmx.middleware import HtmxDetails

    request = RequestFactory().post("/x", headers={"HX-Request": "true"} if htmx else {})
    request.user = user_with_role(role)
    request.htmx = HtmxDetails(request)
    view = role_required(Role.OPERATOR)(_view)

    try:
        response = view(request)
    except PermissionDenied:
        response = HttpResponse(status=403)

    assert response.status_code == status


def test_role_required_sends_anonymous_htmx_requests_to_the_login_page():
    from django_htmx.middleware import HtmxDetails

    request = RequestFactory().get("/alerts/", headers={"HX-Request": "true"})
    request.user = AnonymousUser()
    request.htmx = HtmxDetails(request)

    response = role_required(Role.VIEWER)(_view)(request)

    assert response.status_code == 401
    assert response["HX-Redirect"] == "/accounts/login/?next=/alerts/"


class OperatorsOnly(RoleRequiredConsumer, AsyncWebsocketConsumer):
    required_role = Role.OPERATOR


def handshake(consumer, user):
    async def scenario():
        communicator = WebsocketCommunicator(consumer.as_asgi(), "/ws/x/")
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, (False, 4403)), (Role.VIEWER, (False, 4403)), (Role.OPERATOR, (True, None))],
)
def test_consumers_refuse_the_handshake_without_the_role(user_with_role, role, expected):
    assert handshake(OperatorsOnly, user_with_role(role)) == expected


def test_consumers_refuse_anonymous_sockets_with_4401():
    assert handshake(OperatorsOnly, AnonymousUser()) == (False, 4401)
