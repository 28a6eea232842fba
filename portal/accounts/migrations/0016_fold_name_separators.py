import re
import unicodedata

from django.db import migrations

# As portal.accounts.models.folded_name, frozen here: the stored names folded anew, now
# without apostrophes, hyphens and dashes, dots and spaces (« N’Diaye » -> "ndiaye").
NAME_SEPARATORS = re.compile(r"['`\u2018\u2019\u02bc\u02bb\-\u2010-\u2015.\s]")
BATCH = 2000


def folded_name(text):
    decomposed = unicodedata.normalize("NFKD", text)
    return NAME_SEPARATORS.sub("", "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold())


def refold(model, names):
    """Each row's ``<name>_folded`` columns recomputed from ``names`` (column: source),
    in batches; only the rows whose folded names change are written (most have no
    separator to drop)."""
    fields = list(names)
    rows = model._base_manager.only("pk", *fields, *names.values()).order_by("pk")
    changed = []
    for row in rows.iterator(chunk_size=BATCH):
        new = {field: folded_name(getattr(row, source)) for field, source in names.items()}
        if any(getattr(row, field) != value for field, value in new.items()):
            for field, value in new.items():
                setattr(row, field, value)
            changed.append(row)
        if len(changed) == BATCH:
            model._base_manager.bulk_update(changed, fields)
            changed = []
    model._base_manager.bulk_update(changed, fields)


def refold_names(apps, schema_editor):
    refold(apps.get_model("accounts", "User"), {"first_folded": "first_name", "last_folded": "last_name"})
    # Every record, merged ones too: the base manager filters nothing.
    refold(
        apps.get_model("accounts", "Patient"),
        {"first_folded": "first_name", "last_folded": "last_name", "birth_folded": "birth_name"},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0015_patient_birth_folded"),
    ]

    # Back, the columns keep the new folding: the older code's searches then miss
    # a name typed with its apostrophe, as they missed one typed without it before.
    operations = [
        migrations.RunPython(refold_names, migrations.RunPython.noop),
    ]
