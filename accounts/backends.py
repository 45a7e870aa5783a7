from django.contrib.auth.backends import BaseBackend

from accounts.permissions import Role


class AdminRoleBackend(BaseBackend):
    """Members of the Admin group hold every permission, in Django admin and elsewhere.

    So Admins manage every model without each app's permissions being listed in the group, and
    models added later are covered too. It authenticates nobody.
    """

    def _is_admin(self, user_obj) -> bool:
        if not user_obj.is_active or user_obj.is_anonymous:
            return False
        if not hasattr(user_obj, "_admin_role_cache"):
            user_obj._admin_role_cache = user_obj.groups.filter(name=Role.ADMIN.group_name).exists()
        return user_obj._admin_role_cache

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return self._is_admin(user_obj)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return self._is_admin(user_obj)
