"""Off-site copies of backups: age-encrypted, in S3-compatible object storage.

After each good backup the archive is encrypted to BACKUP_AGE_RECIPIENTS (public keys only: the
Vigil host can write copies it cannot read) and uploaded as ``<BACKUP_S3_PREFIX><archive>.age``.
The copies have their own retention (BACKUP_OFFSITE_RETENTION_DAYS), counted from the bucket's
listing, so they outlive the local archives and their rows. ``manage.py restore --from-remote``
downloads one and decrypts it with the identity in BACKUP_AGE_IDENTITY_FILE.

A failed upload is recorded on the Backup row and announced (signals.offsite_failed); the next
good upload announces the recovery.
"""

import logging
import os
from datetime import timedelta
from pathlib import Path

import boto3
import pyrage
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

from backups import signals
from backups.models import Backup

logger = logging.getLogger(__name__)

ENCRYPTED_SUFFIX = ".age"
PRIVATE_FILE_MODE = 0o600
# What the storage or its client raises when a request fails.
STORAGE_ERRORS = (Boto3Error, BotoCoreError, ClientError)
# Errors of storage, of the local disk and of keys that make one upload fail.
UPLOAD_ERRORS = (
    *STORAGE_ERRORS,
    OSError,
    pyrage.EncryptError,
    pyrage.RecipientError,
)


class OffsiteError(RuntimeError):
    pass


def is_configured() -> bool:
    return bool(settings.BACKUP_S3_BUCKET and settings.BACKUP_AGE_RECIPIENTS)


def storage_client():
    """An S3 client for BACKUP_S3_* (path-style addressing for a custom endpoint, as MinIO and
    most S3-compatible servers want)."""
    options = {
        "region_name": settings.BACKUP_S3_REGION,
        "config": Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            s3={"addressing_style": "path"} if settings.BACKUP_S3_ENDPOINT_URL else {},
        ),
    }
    if settings.BACKUP_S3_ENDPOINT_URL:
        options["endpoint_url"] = settings.BACKUP_S3_ENDPOINT_URL
    if settings.BACKUP_S3_ACCESS_KEY_ID:
        options["aws_access_key_id"] = settings.BACKUP_S3_ACCESS_KEY_ID
        options["aws_secret_access_key"] = settings.BACKUP_S3_SECRET_ACCESS_KEY
    return boto3.session.Session().client("s3", **options)


def recipients() -> list:
    """BACKUP_AGE_RECIPIENTS as age recipients: ``age1...`` keys or SSH public keys."""
    parsed = []
    for text in settings.BACKUP_AGE_RECIPIENTS:
        if text.startswith("ssh-"):
            parsed.append(pyrage.ssh.Recipient.from_str(text))
        else:
            parsed.append(pyrage.x25519.Recipient.from_str(text))
    return parsed


def identities(identity_file: Path) -> list:
    """The ``AGE-SECRET-KEY-...`` lines of an age identity file (comments skipped)."""
    lines = Path(identity_file).read_text().splitlines()
    keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not keys:
        raise OffsiteError(f"{identity_file}: no age identity in it")
    return [pyrage.x25519.Identity.from_str(key) for key in keys]


def object_key(backup: Backup) -> str:
    return f"{settings.BACKUP_S3_PREFIX}{backup.file_name}{ENCRYPTED_SUFFIX}"


def upload(backup: Backup) -> bool:
    """Encrypt ``backup``'s archive and upload it; record and announce the outcome.

    Returns whether the copy is in the bucket. Does nothing (False) when off-site copies are not
    configured.
    """
    if not is_configured():
        return False
    encrypted = Path(f"{backup.path}{ENCRYPTED_SUFFIX}")
    key = object_key(backup)
    try:
        encrypt(Path(backup.path), encrypted)
        size = encrypted.stat().st_size
        storage_client().upload_file(
            str(encrypted),
            settings.BACKUP_S3_BUCKET,
            key,
            ExtraArgs={"Metadata": {"sha256": backup.sha256}},
        )
    except UPLOAD_ERRORS as error:
        message = f"{type(error).__name__}: {error}"
        backup.record_offsite_failure(message)
        logger.error("off-site copy of backup %s failed: %s", backup.pk, message)
        signals.offsite_failed.send_robust(
            Backup,
            backup=backup,
            message=f"Off-site copy of backup {backup.file_name} failed: {message}"[:1000],
        )
        return False
    finally:
        encrypted.unlink(missing_ok=True)
    backup.record_offsite_upload(key, size)
    logger.info("backup %s copied off-site to %s (%s bytes)", backup.pk, key, size)
    signals.offsite_succeeded.send_robust(
        Backup, backup=backup, message=f"Off-site copy of backup {backup.file_name} uploaded"
    )
    return True


def encrypt(archive: Path, encrypted: Path) -> None:
    """Write ``archive`` encrypted to the recipients into ``encrypted``, created 0600."""
    descriptor = os.open(encrypted, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with open(descriptor, "wb") as writer, open(archive, "rb") as reader:
        pyrage.encrypt_io(reader, writer, recipients())


def download(key: str, identity_file: Path, archive: Path) -> None:
    """Fetch object ``key`` and decrypt it with ``identity_file`` into ``archive`` (0600)."""
    encrypted = Path(f"{archive}{ENCRYPTED_SUFFIX}")
    try:
        storage_client().download_file(settings.BACKUP_S3_BUCKET, key, str(encrypted))
        os.chmod(encrypted, PRIVATE_FILE_MODE)
        descriptor = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with open(descriptor, "wb") as writer, open(encrypted, "rb") as reader:
            pyrage.decrypt_io(reader, writer, identities(identity_file))
    except STORAGE_ERRORS as error:
        raise OffsiteError(f"cannot download {key}: {error}") from None
    except (pyrage.DecryptError, pyrage.IdentityError) as error:
        raise OffsiteError(f"cannot decrypt {key} with {identity_file}: {error}") from None
    finally:
        encrypted.unlink(missing_ok=True)


def remote_copies(client=None) -> list[dict]:
    """The off-site copies under BACKUP_S3_PREFIX, oldest first, as S3 listing entries
    (``Key``, ``Size``, ``LastModified``)."""
    client = client or storage_client()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.BACKUP_S3_BUCKET, Prefix=settings.BACKUP_S3_PREFIX
    )
    copies = [
        entry
        for page in pages
        for entry in page.get("Contents", [])
        if entry["Key"].endswith(ENCRYPTED_SUFFIX)
    ]
    return sorted(copies, key=lambda entry: entry["LastModified"])


def prune(now=None) -> int:
    """Delete off-site copies older than BACKUP_OFFSITE_RETENTION_DAYS, keeping the newest."""
    if not is_configured():
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=settings.BACKUP_OFFSITE_RETENTION_DAYS)
    client = storage_client()
    copies = remote_copies(client)
    expired = [entry["Key"] for entry in copies[:-1] if entry["LastModified"] < cutoff]
    for key in expired:
        client.delete_object(Bucket=settings.BACKUP_S3_BUCKET, Key=key)
    return len(expired)
