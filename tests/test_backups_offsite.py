"""Off-site copies of backups: age-encrypted objects in S3-compatible storage.

The storage is a real S3-compatible server on loopback (moto in server mode, in this process);
Vigil reaches it over HTTP with boto3 like any other endpoint.
"""

import subprocess
from datetime import timedelta
from pathlib import Path

import pyrage
import pytest
from django.core.management import call_command
from django.utils import timezone
from moto.server import ThreadedMotoServer

from accounts.permissions import Role
from alerts import backup_alerts
from backups import dumps, offsite, postgres
from backups.models import Backup
from tests.test_backups import (
    empty_database,
    monitoring_data,  # noqa: F401 (a fixture)
    open_backup_alerts,
)
from tests.test_backups import manage_py as manage_py_against

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("monitoring_data")]

BUCKET = "vigil-offsite"


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path) -> Path:
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture(scope="module")
def storage_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def identity():
    return pyrage.x25519.Identity.generate()


@pytest.fixture
def identity_file(tmp_path, identity) -> Path:
    path = tmp_path / "offsite.key"
    path.write_text(f"# the off-site backups' key\n{identity}\n")
    return path


@pytest.fixture
def storage_settings(identity, storage_endpoint) -> dict:
    return {
        "BACKUP_S3_ENDPOINT_URL": storage_endpoint,
        "BACKUP_S3_BUCKET": BUCKET,
        "BACKUP_S3_PREFIX": "site-a/",
        "BACKUP_S3_ACCESS_KEY_ID": "vigil",
        "BACKUP_S3_SECRET_ACCESS_KEY": "offsite-secret",
        "BACKUP_AGE_RECIPIENTS": [str(identity.to_public())],
    }


@pytest.fixture
def bucket(settings, storage_settings):
    """An empty bucket that backups are configured to copy into."""
    for name, value in storage_settings.items():
        setattr(settings, name, value)
    client = offsite.storage_client()
    client.create_bucket(Bucket=BUCKET)
    yield client
    for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=entry["Key"])
    client.delete_bucket(Bucket=BUCKET)


def environment(storage_settings: dict, identity_file: Path) -> dict:
    """The environment variables of ``storage_settings`` and an identity file, for manage.py."""
    env = {
        name: ",".join(value) if isinstance(value, list) else value
        for name, value in storage_settings.items()
    }
    return env | {"BACKUP_AGE_IDENTITY_FILE": str(identity_file)}


def stored_object(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_a_good_backup_is_copied_encrypted_to_the_bucket(bucket, identity):
    backup = dumps.run_backup()

    backup.refresh_from_db()
    assert backup.offsite_status == Backup.Offsite.UPLOADED, backup.offsite_error
    assert backup.offsite_key == f"site-a/{backup.file_name}.age"
    keys = [entry["Key"] for entry in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [backup.offsite_key]
    copy = stored_object(bucket, backup.offsite_key)
    assert backup.offsite_size == len(copy)
    assert copy.startswith(b"age-encryption.org/v1")
    assert b"PGDMP" not in copy and b"pbkdf2_sha256" not in copy
    assert pyrage.decrypt(copy, [identity]) == Path(backup.path).read_bytes()
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(copy, [pyrage.x25519.Identity.generate()])
    assert not list(Path(backup.path).parent.glob("*.age"))


def test_the_encrypted_copy_is_not_an_archive_pg_restore_can_read(bucket, tmp_path):
    backup = dumps.run_backup()
    copy = tmp_path / "copy.dump"
    copy.write_bytes(stored_object(bucket, Backup.objects.get().offsite_key))

    with postgres.connect() as conn:
        pg_restore = postgres.client_bin_dir(postgres.server_major(conn)) / "pg_restore"
    listing = subprocess.run([pg_restore, "--list", copy], capture_output=True, text=True)

    assert backup.is_good
    assert listing.returncode != 0


def test_restore_from_the_remote_copy_into_an_empty_database_gives_the_same_row_counts(
    bucket, identity_file, storage_settings, user_with_role
):
    user_with_role(Role.ADMIN)
    backup = dumps.run_backup()
    backup.refresh_from_db()
    Path(backup.path).unlink()
    with postgres.connect() as admin_conn, empty_database(admin_conn) as target:
        env = environment(storage_settings, identity_file)
        result = manage_py_against(["restore", "--from-remote", backup.offsite_key], target, **env)
        assert result.returncode == 0, result.stderr

        with postgres.connect(target) as restored:
            assert postgres.count_rows(restored, dumps.MAIN_TABLES) == backup.row_counts
    assert backup.row_counts["samples"] == 50 and backup.row_counts["auth_user"] == 1


def test_restore_from_the_remote_copy_refuses_the_wrong_identity(
    bucket, storage_settings, tmp_path
):
    backup = dumps.run_backup()
    backup.refresh_from_db()
    stranger = tmp_path / "stranger.key"
    stranger.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    with postgres.connect() as admin_conn, empty_database(admin_conn) as target:
        env = environment(storage_settings, stranger)
        result = manage_py_against(["restore", "--from-remote", backup.offsite_key], target, **env)

        assert result.returncode != 0
        assert "cannot decrypt" in result.stderr
        with postgres.connect(target) as untouched:
            assert postgres.existing_tables(untouched, dumps.MAIN_TABLES) == []


def test_a_failed_upload_fires_the_backup_alert_and_the_next_good_upload_resolves_it(
    bucket, settings
):
    settings.BACKUP_S3_BUCKET = "no-such-bucket"
    backup = dumps.run_backup()

    backup.refresh_from_db()
    assert backup.status == Backup.Status.SUCCEEDED
    assert backup.offsite_status == Backup.Offsite.FAILED
    assert "NoSuchBucket" in backup.offsite_error
    alert = open_backup_alerts(backup_alerts.BACKUP_OFFSITE_FAILED).get()
    assert alert.severity == "critical" and backup.file_name in alert.message

    settings.BACKUP_S3_BUCKET = BUCKET
    Backup.objects.update(started_at=timezone.now() - timedelta(hours=2))
    dumps.run_backup(Backup.Kind.SCHEDULED)

    assert not open_backup_alerts(backup_alerts.BACKUP_OFFSITE_FAILED).exists()
    assert Backup.objects.filter(offsite_status=Backup.Offsite.UPLOADED).count() == 1


def test_an_unreachable_storage_server_fires_the_backup_alert(bucket, settings):
    stopped = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    stopped.start()
    host, port = stopped.get_host_and_port()
    stopped.stop()
    settings.BACKUP_S3_ENDPOINT_URL = f"http://{host}:{port}"

    backup = dumps.run_backup()

    backup.refresh_from_db()
    assert backup.offsite_status == Backup.Offsite.FAILED
    assert open_backup_alerts(backup_alerts.BACKUP_OFFSITE_FAILED).exists()


def test_off_site_retention_deletes_old_copies_but_keeps_the_newest(bucket):
    first = dumps.run_backup()
    Backup.objects.update(started_at=timezone.now() - timedelta(hours=2))
    second = dumps.run_backup()
    foreign = "site-a/notes.txt"
    bucket.put_object(Bucket=BUCKET, Key=foreign, Body=b"not a backup")

    assert offsite.prune(now=timezone.now() + timedelta(days=1)) == 0
    deleted = offsite.prune(now=timezone.now() + timedelta(days=91))

    keys = {entry["Key"] for entry in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert deleted == 1
    assert keys == {offsite.object_key(second), foreign}
    assert offsite.object_key(first) not in keys


def test_without_a_bucket_no_copy_is_attempted(settings):
    settings.BACKUP_S3_BUCKET = ""

    backup = dumps.run_backup()

    backup.refresh_from_db()
    assert backup.offsite_status == Backup.Offsite.NONE
    assert not open_backup_alerts(backup_alerts.BACKUP_OFFSITE_FAILED).exists()


def test_the_backups_page_shows_the_off_site_copy(bucket, client, user_with_role):
    backup = dumps.run_backup()
    backup.refresh_from_db()
    client.force_login(user_with_role(Role.ADMIN))

    page = client.get("/backups/").content.decode()

    assert "Off-site copy" in page
    assert backup.offsite_key in page
    assert f"copied, encrypted, to <code>{BUCKET}</code>" in page


def test_the_backups_page_shows_a_failed_upload(bucket, client, user_with_role, settings):
    settings.BACKUP_S3_BUCKET = "no-such-bucket"
    dumps.run_backup()
    client.force_login(user_with_role(Role.ADMIN))

    page = client.get("/backups/").content.decode()

    assert "Upload failed" in page and "NoSuchBucket" in page


def test_backup_now_names_the_off_site_copy(bucket, capsys):
    call_command("backup_now")

    backup = Backup.objects.get()
    output = capsys.readouterr().out.splitlines()
    assert f"off-site copy: {backup.offsite_key}" in output
    assert output[-1] == backup.path


def test_restore_lists_the_remote_copies_newest_last(bucket, capsys):
    first = dumps.run_backup()
    Backup.objects.update(started_at=timezone.now() - timedelta(hours=2))
    second = dumps.run_backup()

    call_command("restore", list_remote=True)

    lines = capsys.readouterr().out.splitlines()
    keys = [line.split()[0] for line in lines if line.startswith("site-a/")]
    assert keys == [offsite.object_key(first), offsite.object_key(second)]


def test_local_retention_also_deletes_an_encrypted_copy_left_by_a_dead_upload(settings):
    settings.BACKUP_S3_BUCKET = ""
    old = dumps.run_backup()
    leftover = Path(f"{old.path}{offsite.ENCRYPTED_SUFFIX}")
    leftover.write_bytes(b"age-encryption.org/v1\n")  # a worker killed mid-encryption
    Backup.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=31))
    dumps.run_backup()

    assert dumps.prune() == 1

    assert not leftover.exists() and not Path(old.path).exists()
