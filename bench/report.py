"""Write the figures of bench/results.json into docs/performance.md ("## The figures").

Run after `make bench` when the numbers move: ``python -m bench.report``. The prose that explains
each figure is kept as it is; only the table, the machine line and the run notes are replaced.
"""

import json
import re

from bench.run import ROOT, number

RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
SECTION = re.compile(r"(## The figures\n\n)(.*?)(\n## )", re.DOTALL)


def figures_markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"Run {machine['date']} at commit `{machine['commit']}`: {machine['cpus']} × "
        f"{machine['cpu_model']}, {machine['memory_gib']} GiB, PostgreSQL "
        f"{machine['postgresql']}, Python {machine['python']}.",
        "",
        "| figure | value | unit | target | met |",
        "|---|---|---|---|---|",
    ]
    for module in report["modules"]:
        if module["error"]:
            lines.append(f"| {module['module']}: FAILED |  |  |  |  |")
        for figure in module.get("figures", []):
            met = {True: "yes", False: "**no**", None: ""}[figure["met"]]
            lines.append(
                f"| {figure['label']} | {number(figure['value'])} | {figure['unit']} "
                f"| {figure['target'] or ''} | {met} |"
            )
    lines.append("")
    for module in report["modules"]:
        notes = " ".join(module.get("notes", []))
        lines.append(f"- `{module['module']}` ({module['seconds']:.0f} s): {notes}")
    return "\n".join(lines) + "\n"


def main() -> None:
    report = json.loads(RESULTS.read_text())
    doc = DOC.read_text()
    if not SECTION.search(doc):
        raise SystemExit(f"{DOC} has no '## The figures' section followed by another section")
    updated = SECTION.sub(
        lambda match: match.group(1) + figures_markdown(report) + match.group(3), doc, count=1
    )
    DOC.write_text(updated)
    print(f"wrote the figures of {RESULTS.name} into {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
