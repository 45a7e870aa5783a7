from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alerts.rule_files import RuleFileError, import_rules


class Command(BaseCommand):
    help = "Import the alerting and recording rules of a Prometheus rule file."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="A Prometheus rule file (YAML).")

    def handle(self, *args, file: Path, **options):
        try:
            report = import_rules(file.read_text())
        except (OSError, RuleFileError) as error:
            raise CommandError(str(error)) from None
        for verb, names in (("created", report.created), ("updated", report.updated)):
            for name in names:
                self.stdout.write(f"{verb} {name}")
