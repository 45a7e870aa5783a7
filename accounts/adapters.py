from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUPS

    def send_password_reset_mail(self, user, email: str, context: dict) -> None:
        """Someone an Admin invited (no password yet, never logged in) gets the same link
        worded as an invitation."""
        from accounts.users import is_invited

        if is_invited(user):
            self.send_mail("account/email/invitation", email, context)
        else:
            super().send_password_reset_mail(user, email, context)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Sign-ups through an identity provider follow their own setting, not the local one."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return settings.SOCIALACCOUNT_ALLOW_SIGNUPS
