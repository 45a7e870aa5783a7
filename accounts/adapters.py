from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings

from config import encryption

# The purpose the keys of two-factor secrets are derived for (config/encryption.py).
MFA_SECRETS = "two-factor secrets"


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
    """Sign-ups through an identity provider follow their own setting, not the local one, and
    are limited to verified e-mail addresses of the allowed domains when those are set."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        if not settings.SOCIALACCOUNT_ALLOW_SIGNUPS:
            return False
        allowed = settings.SOCIALACCOUNT_ALLOWED_EMAIL_DOMAINS
        return not allowed or any(
            address.verified and address.email.lower().rpartition("@")[2] in allowed
            for address in sociallogin.email_addresses
        )


class MFAAdapter(DefaultMFAAdapter):
    """Two-factor secrets (TOTP keys, recovery-code seeds) are stored encrypted, so a database
    dump or backup cannot be used to generate someone's codes."""

    def encrypt(self, text: str) -> str:
        return encryption.encrypt(text, MFA_SECRETS)

    def decrypt(self, encrypted_text: str) -> str:
        return encryption.decrypt(encrypted_text, MFA_SECRETS)
