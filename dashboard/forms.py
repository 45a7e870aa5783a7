"""The forms that edit a dashboard (title, tags, time range, refresh, variables), one panel, and
that import a dashboard's JSON; and the one that adds an annotation."""

import orjson
from django import forms
from django.core.exceptions import ValidationError

from dashboard import grafana
from dashboard.models import (
    ANNOTATION_MAX_TAGS,
    ANNOTATION_TEXT_MAX_LENGTH,
    GRID_COLUMNS,
    TAG_MAX_LENGTH,
    Annotation,
    Dashboard,
    Panel,
)
from dashboard.timerange import INPUT_FORMAT

VARIABLE_KINDS = {"query", "custom"}


class DashboardForm(forms.ModelForm):
    tags = forms.CharField(required=False, help_text="Separated by commas.")
    annotation_tags = forms.CharField(
        required=False,
        help_text="The posted annotations (deploys, say) its time charts mark: those with any of "
        "these tags, separated by commas; blank marks them all.",
    )
    variables = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text='A list, e.g. [{"name": "instance", "kind": "query", "query": '
        '"label_values(cpu_usage, instance)", "multi": true, "include_all": true}] or '
        '{"name": "mode", "kind": "custom", "options": ["user", "system"]}.',
    )
    note = forms.CharField(required=False, max_length=200, label="Version note")

    class Meta:
        model = Dashboard
        fields = [
            "title",
            "folder",
            "tags",
            "time_range",
            "refresh",
            "variables",
            "annotation_tags",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["tags"] = ", ".join(self.instance.tags)
            self.initial["annotation_tags"] = ", ".join(self.instance.annotation_tags)

    def clean_tags(self) -> list[str]:
        return _tag_list(self.cleaned_data["tags"])

    def clean_annotation_tags(self) -> list[str]:
        return _tag_list(self.cleaned_data["annotation_tags"])

    def clean_variables(self) -> list[dict]:
        found = self.cleaned_data["variables"] or []
        if not isinstance(found, list):
            raise ValidationError("Variables are a JSON list.")
        for variable in found:
            if not isinstance(variable, dict) or not str(variable.get("name", "")).isidentifier():
                raise ValidationError("Each variable needs a name (letters, digits, _).")
            if variable.get("kind") not in VARIABLE_KINDS:
                raise ValidationError('A variable\'s kind is "query" or "custom".')
        return found


def _tag_list(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


class AnnotationForm(forms.ModelForm):
    """An annotation added on a dashboard's annotations page: a moment, its text, its tags."""

    time = forms.DateTimeField(
        input_formats=[INPUT_FORMAT],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=INPUT_FORMAT),
        help_text="In your time zone.",
    )
    text = forms.CharField(max_length=ANNOTATION_TEXT_MAX_LENGTH, widget=forms.TextInput)
    tags = forms.CharField(
        required=False,
        help_text="Separated by commas; this dashboard marks those with any of its annotation "
        "tags (blank there: all).",
    )

    class Meta:
        model = Annotation
        fields = ["time", "text", "tags"]

    def clean_tags(self) -> list[str]:
        tags = list(dict.fromkeys(_tag_list(self.cleaned_data["tags"])))
        if len(tags) > ANNOTATION_MAX_TAGS:
            raise ValidationError(f"At most {ANNOTATION_MAX_TAGS} tags.")
        if any(len(tag) > TAG_MAX_LENGTH for tag in tags):
            raise ValidationError(f"A tag has at most {TAG_MAX_LENGTH} characters.")
        return tags


class PanelForm(forms.ModelForm):
    """One query per line; the legend formats, line by line, go with them."""

    queries = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "promql-input"}),
        help_text="PromQL, one query per line; $variables, $__rate_interval and $__range work.",
    )
    legends = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        label="Legend formats",
        help_text="One per query line, e.g. {{instance}} {{mode}}; blank names a series by its "
        "labels.",
    )
    thresholds = forms.CharField(
        required=False, help_text="E.g. 80 orange, 90 red (green, blue, yellow, purple too)."
    )
    note = forms.CharField(required=False, max_length=200, label="Version note")

    class Meta:
        model = Panel
        fields = [
            "type",
            "title",
            "description",
            "width",
            "height",
            "queries",
            "legends",
            "unit",
            "decimals",
            "min",
            "max",
            "thresholds",
            "text",
        ]
        widgets = {"description": forms.TextInput(), "text": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"text": "Markdown, for a text panel.", "unit": "E.g. percent, bytes, s."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["width"].widget.attrs.update(min=1, max=GRID_COLUMNS)
        if not self.is_bound:
            queries = self.instance.queries
            self.initial["queries"] = "\n".join(query.get("expr", "") for query in queries)
            self.initial["legends"] = "\n".join(query.get("legend", "") for query in queries)
            self.initial["thresholds"] = ", ".join(
                f"{step['value']:g} {step['color']}" for step in self.instance.thresholds
            )

    def clean_width(self) -> int:
        return min(max(self.cleaned_data["width"], 1), GRID_COLUMNS)

    def clean_thresholds(self) -> list[dict]:
        steps = []
        for piece in self.cleaned_data["thresholds"].split(","):
            if not piece.strip():
                continue
            value, _, colour = piece.strip().partition(" ")
            try:
                steps.append({"value": float(value), "color": colour.strip() or "red"})
            except ValueError as error:
                raise ValidationError(f"{piece.strip()!r} is not a value and a colour.") from error
        return sorted(steps, key=lambda step: step["value"])

    def clean(self) -> dict:
        cleaned = super().clean()
        exprs = cleaned.get("queries", "").splitlines()
        legends = cleaned.get("legends", "").splitlines()
        queries = [
            {"expr": expr.strip(), "legend": legends[index].strip() if index < len(legends) else ""}
            for index, expr in enumerate(exprs)
            if expr.strip()
        ]
        cleaned["queries"] = self.instance.queries = queries
        if cleaned.get("type") != Panel.Type.TEXT and not queries:
            self.add_error("queries", "A panel other than text needs a query.")
        return cleaned


class ImportForm(forms.Form):
    """Vigil's own export, or a Grafana dashboard's JSON (converted by dashboard/grafana.py;
    ``left_out`` then lists what it could not take)."""

    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        label="Dashboard JSON",
        help_text="As a dashboard's Export JSON gives it, or a Grafana dashboard's JSON model.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.left_out: list[str] = []

    def clean_definition(self) -> dict:
        try:
            found = orjson.loads(self.cleaned_data["definition"])
        except orjson.JSONDecodeError as error:
            raise ValidationError(f"Not JSON: {error}") from error
        if isinstance(found, dict) and grafana.is_grafana(found):
            found, self.left_out = grafana.convert(found)
        if not isinstance(found, dict) or not str(found.get("title", "")).strip():
            raise ValidationError("A dashboard's JSON is an object with a title.")
        panels = found.get("panels", [])
        if not isinstance(panels, list) or not all(isinstance(panel, dict) for panel in panels):
            raise ValidationError("panels is a list of objects.")
        for panel in panels:
            if panel.get("type", Panel.Type.TIMESERIES) not in Panel.Type.values:
                raise ValidationError(f"Unknown panel type {panel.get('type')!r}.")
        return found
