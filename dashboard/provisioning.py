"""Dashboards as code: every ``*.json`` file of ``DASHBOARDS_DIR`` (Vigil's export, or a Grafana
dashboard's JSON model) becomes a dashboard kept in step with its file.

Running it again changes nothing when the files did not change; a changed file saves a new
version (the previous one is kept). The UI shows these dashboards read-only: the file is the
place to edit them.
"""

from dataclasses import dataclass, field
from pathlib import Path

from dashboard.forms import ImportForm
from dashboard.models import Dashboard


@dataclass
class Outcome:
    file: str
    action: str  # "created", "updated", "unchanged" or "refused"
    detail: list[str] = field(default_factory=list)  # why refused, or what Grafana's lost


def provision_directory(directory: str | Path) -> list[Outcome]:
    """Load every ``*.json`` of ``directory``, in name order; a file that cannot be read is
    refused (and the others still load)."""
    return [provision_file(path) for path in sorted(Path(directory).glob("*.json"))]


def provision_file(path: Path) -> Outcome:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        return Outcome(path.name, "refused", [str(error)])
    # The import page's checks and Grafana conversion, for files too.
    form = ImportForm({"definition": text})
    if not form.is_valid():
        errors = [str(message) for message in form.errors.get("definition", [])]
        return Outcome(path.name, "refused", errors)
    definition = form.cleaned_data["definition"]
    existing = Dashboard.objects.filter(provisioned_from=path.name).first()
    if existing is None:
        board = Dashboard.create_from_dict(definition, owner=None)
        board.provisioned_from = path.name
        board.save(update_fields=["provisioned_from"])
        return Outcome(path.name, "created", form.left_out)
    if existing.matches(definition):
        return Outcome(path.name, "unchanged")
    existing.replace_with(definition, user=None, note=f"Provisioned from {path.name}")
    return Outcome(path.name, "updated", form.left_out)
