from pathlib import Path

from django.db import models
from django.utils import timezone


class Backup(models.Model):
    """One run of ``pg_dump -Fc`` of Vigil's database into BACKUP_DIR, and its verification.

    A row is ``running`` while its archive is being written under a ``.partial`` name; it is
    ``succeeded`` only once the archive has its final name, its size and its sha256. A run that
    dies leaves a ``running`` row, which the next run (or the freshness check) marks failed.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled"
        MANUAL = "manual"

    class Offsite(models.TextChoices):
        NONE = "", "Not configured"
        UPLOADED = "uploaded", "Uploaded"
        FAILED = "failed", "Upload failed"

    class Verification(models.TextChoices):
        UNVERIFIED = "unverified"
        PASSED = "passed"
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SCHEDULED)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The archive's final path; while running, the file is this path plus ".partial".
    path = models.CharField(max_length=1000, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # {table: rows} of the main tables, counted in the very snapshot pg_dump wrote.
    row_counts = models.JSONField(default=dict, blank=True)
    verification = models.CharField(
        max_length=16, choices=Verification.choices, default=Verification.UNVERIFIED
    )
    # {"tables": {table: {"expected": n, "restored": m}}, "error": "..."} of the last check.
    verification_result = models.JSONField(default=dict, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The age-encrypted off-site copy: its object key in BACKUP_S3_BUCKET, once uploaded.
    offsite_status = models.CharField(
        max_length=16, choices=Offsite.choices, default=Offsite.NONE, blank=True
    )
    offsite_key = models.CharField(max_length=1024, blank=True)
    offsite_size = models.BigIntegerField(null=True, blank=True)
    offsite_error = models.TextField(blank=True)
    offsite_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "-started_at"])]

    def __str__(self) -> str:
        return f"Backup {self.pk} of {self.started_at:%Y-%m-%d %H:%M} UTC ({self.status})"

    @property
    def partial_path(self) -> str:
        return f"{self.path}.partial"

    @property
    def file_name(self) -> str:
        return Path(self.path).name

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.finished_at else None

    @property
    def is_good(self) -> bool:
        return self.status == self.Status.SUCCEEDED

    def record_success(self, size: int, sha256: str) -> None:
        self.status, self.size, self.sha256, self.finished_at = (
            self.Status.SUCCEEDED,
            size,
            sha256,
            timezone.now(),
        )
        self.save(update_fields=["status", "size", "sha256", "finished_at"])

    def record_failure(self, error: str) -> None:
        self.status, self.error, self.finished_at = (
            self.Status.FAILED,
            error[:4000],
            timezone.now(),
        )
        self.save(update_fields=["status", "error", "finished_at"])

    def record_verification(self, passed: bool, result: dict) -> None:
        self.verification = self.Verification.PASSED if passed else self.Verification.FAILED
        self.verification_result, self.verified_at = result, timezone.now()
        self.save(update_fields=["verification", "verification_result", "verified_at"])

    def record_offsite_upload(self, key: str, size: int) -> None:
        self.offsite_status, self.offsite_key, self.offsite_size = self.Offsite.UPLOADED, key, size
        self.offsite_error, self.offsite_at = "", timezone.now()
        self.save(
            update_fields=[
                "offsite_status",
                "offsite_key",
                "offsite_size",
                "offsite_error",
                "offsite_at",
            ]
        )

    def record_offsite_failure(self, error: str) -> None:
        self.offsite_status, self.offsite_error = self.Offsite.FAILED, error[:4000]
        self.offsite_at = timezone.now()
        self.save(update_fields=["offsite_status", "offsite_error", "offsite_at"])
