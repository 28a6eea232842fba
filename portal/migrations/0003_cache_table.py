from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    """The table of the database cache that stands in for Redis (portal/cache.py)."""
    call_command("createcachetable", "carnet_cache", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name('carnet_cache')}")


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_form_submission")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
