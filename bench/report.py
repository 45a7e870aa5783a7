"""Write the figures of bench/results.json into docs/performance.md ("## The figures").

Run after `make bench` when the numbers move: ``python -m bench.report``. The prose that explains
each figure is kept as it is; only the table, the machine line and the run notes are replaced.
A run of some modules (``python -m bench.run promql``) replaces only their rows and notes: the
other modules keep the figures of the run that last measured them.
"""

import json
import re

from bench.run import MODULES, ROOT, number

RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
SECTION = re.compile(r"(## The figures\n\n)(.*?)(\n## )", re.DOTALL)
# A table row and a note name their module first: "| `queries` | …", "- `queries` (…".
MODULE_ROW = re.compile(r"^\| `(\w+)` \|")
MODULE_NOTE = re.compile(r"^- `(\w+)` ")


def machine_line(machine: dict) -> str:
    return (
        f"Run {machine['date']} at commit `{machine['commit']}`: {machine['cpus']} × "
        f"{machine['cpu_model']}, {machine['memory_gib']} GiB, PostgreSQL "
        f"{machine['postgresql']}, Python {machine['python']}."
    )


def module_rows(module: dict) -> list[str]:
    if module["error"]:
        return [f"| `{module['module']}` | FAILED |  |  |  |  |"]
    rows = []
    for figure in module.get("figures", []):
        met = {True: "yes", False: "**no**", None: ""}[figure["met"]]
        rows.append(
            f"| `{module['module']}` | {figure['label']} | {number(figure['value'])} "
            f"| {figure['unit']} | {figure['target'] or ''} | {met} |"
        )
    return rows


def figures_markdown(report: dict, previous: str = "") -> str:
    """The section's text for ``report``. Modules the report does not hold keep their rows and
    notes from ``previous`` (the section as it stands), under its machine line."""
    ran = {module["module"]: module for module in report["modules"]}
    kept_rows: dict[str, list[str]] = {}
    kept_notes: dict[str, str] = {}
    previous_machine = None
    for line in previous.splitlines():
        row, note = MODULE_ROW.match(line), MODULE_NOTE.match(line)
        if row and row[1] not in ran:
            kept_rows.setdefault(row[1], []).append(line)
        elif note and note[1] not in ran:
            kept_notes[note[1]] = line
        elif line.startswith("Run "):
            previous_machine = line
    partial = bool(kept_rows) and previous_machine is not None
    order = [*MODULES, *(name for name in [*kept_rows, *ran] if name not in MODULES)]
    order = [name for name in dict.fromkeys(order) if name in ran or name in kept_rows]

    machine = report["machine"]
    lines = [
        previous_machine if partial else machine_line(machine),
        "",
        "| module | figure | value | unit | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name in order:
        lines += module_rows(ran[name]) if name in ran else kept_rows[name]
    lines.append("")
    for name in order:
        if name not in ran:
            if name in kept_notes:
                lines.append(kept_notes[name])
            continue
        module = ran[name]
        when = f"; run {machine['date']} at `{machine['commit']}`" if partial else ""
        notes = " ".join(module.get("notes", []))
        lines.append(f"- `{name}` ({module['seconds']:.0f} s{when}): {notes}")
    return "\n".join(lines) + "\n"


def main() -> None:
    report = json.loads(RESULTS.read_text())
    doc = DOC.read_text()
    section = SECTION.search(doc)
    if not section:
        raise SystemExit(f"{DOC} has no '## The figures' section followed by another section")
    updated = (
        doc[: section.start(2)] + figures_markdown(report, section.group(2)) + doc[section.end(2) :]
    )
    DOC.write_text(updated)
    print(f"wrote the figures of {RESULTS.name} into {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
