"""Instance metadata is read with StoredJsonDecoder (integers beyond 64 bits as floats), and
metadata stored before the API checked it (issue 22) that the API's JSON writer still cannot
write (nesting beyond its limit) has those values made strings, so the rows can be listed
without the renderer's fallback."""

import json
import logging

from django.db import migrations, models
from django.db.models.functions import Cast

from instances.json_values import StoredJsonDecoder, writable_json

logger = logging.getLogger(__name__)


def repair_unwritable_metadata(apps, schema_editor) -> None:
    Instance = apps.get_model("instances", "Instance")
    # Read as text: decoding very deep jsonb in the model field could itself fail.
    rows = Instance.objects.annotate(text=Cast("metadata", models.TextField()))
    for pk, agent_id, text in rows.values_list("pk", "agent_id", "text").iterator():
        try:
            metadata, replaced = writable_json(json.loads(text, cls=StoredJsonDecoder))
        except RecursionError:
            metadata, replaced = {"metadata": text}, ["/"]
        if replaced:
            Instance.objects.filter(pk=pk).update(metadata=metadata)
            logger.warning(
                "instance %s: metadata written as strings at %s", agent_id, ", ".join(replaced)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0005_rollup_covering_keys"),
    ]

    operations = [
        migrations.AlterField(
            model_name="instance",
            name="metadata",
            field=models.JSONField(blank=True, decoder=StoredJsonDecoder, default=dict),
        ),
        migrations.RunPython(repair_unwritable_metadata, migrations.RunPython.noop, elidable=True),
    ]
