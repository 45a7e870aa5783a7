"""Secrets encrypted at rest: notification channels' targets and keys, two-factor secrets.

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from SECRETS_ENCRYPTION_KEY, one per
purpose, so a database dump or backup alone reveals none of them. Stored values carry a prefix;
a value without it is one written before encryption and is read as it is (re-encrypted on its
next save, and by the migrations that introduced encryption).
"""

import base64
import json
from functools import cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django import forms
from django.conf import settings
from django.db import models

PREFIX = "enc:v1:"


@cache
def _fernet(key_material: str, purpose: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"vigil-secrets", info=purpose.encode()
    ).derive(key_material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(text: str, purpose: str) -> str:
    """``text`` encrypted for storage; "" stays "" (nothing to hide, and forms test for it)."""
    if not text:
        return text
    token = _fernet(settings.SECRETS_ENCRYPTION_KEY, purpose).encrypt(text.encode())
    return PREFIX + token.decode()


def decrypt(stored: str, purpose: str) -> str:
    """The text ``encrypt`` was given; raises cryptography.fernet.InvalidToken when the key
    changed since."""
    if not stored or not stored.startswith(PREFIX):
        return stored
    return _fernet(settings.SECRETS_ENCRYPTION_KEY, purpose).decrypt(stored[len(PREFIX) :]).decode()


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database and plain in Python. Not searchable, by design."""

    purpose = "database field"

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value, self.purpose)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value, self.purpose)


class EncryptedJSONField(models.TextField):
    """A JSON value kept encrypted in the database (as text) and a dict or list in Python."""

    purpose = "database field"

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(decrypt(value, self.purpose))

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value

    def get_prep_value(self, value):
        return None if value is None else encrypt(json.dumps(value), self.purpose)

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj))

    def formfield(self, **kwargs):
        return models.Field.formfield(self, **{"form_class": forms.JSONField, **kwargs})
