from django.db import migrations, models

# Prefix searches of the support console (LOWER(column) LIKE 'prefix%'): on PostgreSQL a
# B-tree index answers them only with the pattern operator class, which Django's
# Meta.indexes cannot express portably. SQLite (development) has no equivalent.
PREFIX_INDEXES = [
    ("accounts_user_email_prefix", "accounts_user", "email"),
    ("accounts_user_first_name_prefix", "accounts_user", "first_name"),
    ("accounts_user_last_name_prefix", "accounts_user", "last_name"),
    ("accounts_patient_first_name_prefix", "accounts_patient", "first_name"),
    ("accounts_patient_last_name_prefix", "accounts_patient", "last_name"),
]


def create_prefix_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, table, column in PREFIX_INDEXES:
            schema_editor.execute(f'CREATE INDEX {name} ON {table} (LOWER("{column}") text_pattern_ops)')


def drop_prefix_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _, _ in PREFIX_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_security_event"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["last_name", "first_name", "id"], name="user_name_order"),
        ),
        migrations.RunPython(create_prefix_indexes, drop_prefix_indexes),
    ]
