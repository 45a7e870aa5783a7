"""What templates may show the user, computed once per request."""

from accounts.permissions import Role, has_role


def roles(request) -> dict:
    """``can_operate``: show acknowledge, resolve and silence controls.

    The live dashboard renders the same templates without a request and passes the flag itself.
    """
    return {"can_operate": has_role(getattr(request, "user", None), Role.OPERATOR)}
