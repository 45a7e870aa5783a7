from django.db import migrations

# Where each hour starts inside a day's block, so that a read of a short window (PromQL over an
# hour of a compacted day) ships only those hours' part of the arrays, not the day's: for hour h
# (0-23), hour_starts[h + 1] is the index of its first sample (of the next sample when the hour
# has none; count + 1 after the last), and hour_bases_us[h + 1] the time of the sample before it,
# in microseconds from the day's start (0 for none), from which its deltas run. NULL in blocks
# compacted before this column: those are read whole.
ADD = """
ALTER TABLE sample_blocks ADD COLUMN hour_starts integer[], ADD COLUMN hour_bases_us bigint[];
"""
DROP = "ALTER TABLE sample_blocks DROP COLUMN hour_starts, DROP COLUMN hour_bases_us;"


class Migration(migrations.Migration):
    dependencies = [("instances", "0010_sample_blocks")]

    operations = [migrations.RunSQL(ADD, DROP)]
