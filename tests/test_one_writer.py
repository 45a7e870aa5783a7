"""One writer each: only alerts/lifecycle.py changes an alert's state, and only
alerts/instance_status.py writes an instance's status (migrations and tests aside)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def source_files():
    for path in sorted(REPO.glob("*/**/*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[0] in {"tests", ".venv"} or "migrations" in relative.parts:
            continue
        yield relative, ast.parse(path.read_text())


def attribute_writes(tree: ast.AST):
    """``(node, target)`` for every assignment to an attribute, tuples unpacked."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(item, ast.Attribute):
                    yield node, item


def bulk_writes(tree: ast.AST, model: str):
    """``update(...)`` and ``bulk_update(...)`` calls on ``<model>.objects`` querysets."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"update", "bulk_update"}
            and ast.unparse(node.func.value).startswith(f"{model}.objects")
        ):
            yield node


def test_only_the_lifecycle_changes_an_alerts_state():
    state_fields = {"status", "acknowledged_at", "acknowledged_by", "resolved_at"}
    writers = []
    for relative, tree in source_files():
        if relative == Path("alerts/lifecycle.py"):
            continue
        for node, target in attribute_writes(tree):
            if target.attr in state_fields and "alert" in ast.unparse(target.value).lower():
                writers.append(f"{relative}:{node.lineno}")
        for node in bulk_writes(tree, "Alert"):
            if any(field in ast.unparse(node) for field in state_fields):
                writers.append(f"{relative}:{node.lineno}")
    assert writers == []


def test_only_the_status_writer_writes_an_instances_status():
    writers = []
    for relative, tree in source_files():
        if relative == Path("alerts/instance_status.py"):
            continue
        in_instance_model = relative == Path("instances/models.py")
        for node, target in attribute_writes(tree):
            receiver = ast.unparse(target.value).lower()
            if target.attr == "status" and (
                "instance" in receiver or (in_instance_model and receiver == "self")
            ):
                writers.append(f"{relative}:{node.lineno}")
        for node in ast.walk(tree):
            # update(status=...) on instances, and fields handed to Instance.update or
            # register, whose keys are field names.
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                keywords = {keyword.arg for keyword in node.keywords}
                called_on = ast.unparse(node.func.value)
                if node.func.attr in {"update", "bulk_update", "register", "create"} and (
                    "status" in keywords and "nstance" in called_on
                ):
                    writers.append(f"{relative}:{node.lineno}")
    assert writers == []
