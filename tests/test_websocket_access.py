"""A live page's socket lives only as long as its user may watch: logging out, losing the role
or being deactivated closes it at once, not at the next reconnect."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.urls import reverse

from accounts.permissions import Role, set_role
from accounts.users import set_active
from tests.test_dashboard_live import session_cookie_of, socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(user_with_role):
    return user_with_role(Role.OPERATOR, "olga")


def watch_then(client, user, change) -> dict:
    """Open the overview's socket as ``user``, make ``change`` (a sync function), and return
    what the socket hears next."""

    cookie = session_cookie_of(client, user)

    async def scenario():
        communicator = socket("/ws/overview/", cookie)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        await sync_to_async(change)()
        heard = await communicator.receive_output(timeout=10)
        await communicator.disconnect()
        return heard

    return async_to_sync(scenario)()


def test_logging_out_closes_the_sessions_live_pages(client, operator):
    heard = watch_then(client, operator, lambda: client.post(reverse("account_logout")))

    assert heard == {"type": "websocket.close", "code": 4401}


def test_deactivating_a_user_closes_their_live_pages(client, operator, user_with_role):
    boss = user_with_role(Role.ADMIN, "boss")

    heard = watch_then(client, operator, lambda: set_active(boss, None, operator, False))

    assert heard == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize(
    ("new_role", "code"),
    [(None, 4403), (Role.VIEWER, 4000)],
    ids=["role removed: refused", "demoted to viewer: reconnects without the controls"],
)
def test_a_role_change_closes_the_live_pages(client, operator, new_role, code):
    heard = watch_then(client, operator, lambda: set_role(operator, new_role))

    assert heard == {"type": "websocket.close", "code": code}


def test_a_change_that_keeps_access_leaves_the_socket_open(client, operator):
    cookie = session_cookie_of(client, operator)

    async def scenario():
        communicator = socket("/ws/overview/", cookie)
        await communicator.connect(timeout=10)
        await sync_to_async(set_role)(operator, Role.OPERATOR)
        await sync_to_async(operator.save)()
        quiet = await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return quiet

    assert async_to_sync(scenario)()
