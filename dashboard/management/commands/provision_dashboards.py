from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard.provisioning import provision_directory


class Command(BaseCommand):
    help = (
        "Load the dashboards of DASHBOARDS_DIR (or the folder given): a new file creates its "
        "dashboard, a changed one saves a new version, an unchanged one does nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", default=None)

    def handle(self, *args, directory=None, **options):
        directory = directory or settings.DASHBOARDS_DIR
        if not directory:
            self.stdout.write("No DASHBOARDS_DIR: no dashboards to provision.")
            return
        outcomes = provision_directory(directory)
        for outcome in outcomes:
            self.stdout.write(f"{outcome.file}: {outcome.action}")
            for line in outcome.detail:
                self.stdout.write(f"  {line}")
        if any(outcome.action == "refused" for outcome in outcomes):
            raise CommandError("Some dashboard files were refused (see above).")
