import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alerts.alerting_config import ConfigError, dump, export_config, import_config


class Command(BaseCommand):
    help = (
        "Export the whole alerting configuration (rules, recording rules, channels, silences) "
        "as one YAML file, or import one, all or nothing."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="Write the configuration as YAML.")
        export.add_argument(
            "file", nargs="?", type=Path, help="Where to write it (default: standard output)."
        )
        export.add_argument(
            "--include-secrets",
            action="store_true",
            help="Write channel secrets in clear instead of as {env: VARIABLE} references.",
        )
        imported = actions.add_parser("import", help="Create or update what a YAML file says.")
        imported.add_argument("file", type=Path, help="A file written by export (or by hand).")

    def handle(self, *args, action: str, file: Path | None, **options):
        if action == "export":
            text = dump(export_config(include_secrets=options["include_secrets"]))
            if file is None:
                sys.stdout.write(text)
            else:
                file.write_text(text)
            return
        try:
            report = import_config(file.read_text(), actor="manage.py alerting_config")
        except OSError as error:
            raise CommandError(str(error)) from None
        except ConfigError as error:
            raise CommandError(
                "nothing imported:\n" + "\n".join(f"  {problem}" for problem in error.lines)
            ) from None
        for verb, names in report.as_dict().items():
            for name in names:
                self.stdout.write(f"{verb}: {name}")
