import logging

import requests
from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings

from config import encryption

logger = logging.getLogger(__name__)

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
    are limited to verified e-mail addresses of the allowed domains, and to members of the
    allowed GitHub organisations, when those are set."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        if not settings.SOCIALACCOUNT_ALLOW_SIGNUPS:
            return False
        allowed = settings.SOCIALACCOUNT_ALLOWED_EMAIL_DOMAINS
        if allowed and not any(
            address.verified and address.email.lower().rpartition("@")[2] in allowed
            for address in sociallogin.email_addresses
        ):
            return False
        if sociallogin.account.provider == "github" and settings.GITHUB_ALLOWED_ORGANIZATIONS:
            return bool(
                set(github_organizations(sociallogin.token.token))
                & set(settings.GITHUB_ALLOWED_ORGANIZATIONS)
            )
        return True


def github_organizations(access_token: str) -> list[str]:
    """The logins (lower case) of the GitHub organisations the token's user belongs to, as the
    token (scope read:org) may see them; GitHub Enterprise through GITHUB_URL."""
    github = settings.SOCIALACCOUNT_PROVIDERS.get("github", {})
    web_url = github.get("GITHUB_URL", "").rstrip("/")
    api_url = f"{web_url}/api/v3" if web_url else "https://api.github.com"
    with DefaultSocialAccountAdapter().get_requests_session() as session:
        try:
            response = session.get(
                f"{api_url}/user/orgs",
                headers={"Authorization": f"token {access_token}"},
                params={"per_page": 100},
            )
            response.raise_for_status()
            return [organization["login"].lower() for organization in response.json()]
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            # Membership unknown: no account (the person may try again; nobody is let in).
            logger.warning("GitHub organisations not read: %s", error)
            return []


class MFAAdapter(DefaultMFAAdapter):
    """Two-factor secrets (TOTP keys, recovery-code seeds) are stored encrypted, so a database
    dump or backup cannot be used to generate someone's codes."""

    def encrypt(self, text: str) -> str:
        return encryption.encrypt(text, MFA_SECRETS)

    def decrypt(self, encrypted_text: str) -> str:
        return encryption.decrypt(encrypted_text, MFA_SECRETS)
