"""Merging two records of the same person, as support does when a duplicate was made.

Everything that points at the duplicate moves to the record kept, found from the
model graph (every relation to ``Patient``), so that a model added later moves too or
fails the test that lists them. The audit trails stay where they were written (they
are append-only and chained per record) and show on the kept record's history; the
duplicate remains as a tombstone, ``merged_into`` the kept record, which every lookup
(``Patient.objects``) ignores.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import Patient

# Relations whose rows stay on the duplicate, and why.
STAY = {
    "audit.AccessLog": "append-only, chained per record: shown on the kept record's access history",
    "audit.AccessReport": "a report on a line of the access log, which stays",
    "support.SupportAction": "the support trail is append-only",
    "fhir_api.ApiCall": "the API call log is append-only",
    "records.RecordEvent": "the record's history is append-only: shown on the kept record's history",
    "accounts.Patient": "earlier tombstones: re-pointed to the kept record",
}
# Relations with a uniqueness on the patient: combined rather than moved as they are.
COMBINED = {
    "careteams.CareLink",
    "careteams.ClinicianBlock",
    "agenda.CalendarFeed",
    "records.Export",
    "accounts.Representation",
}


class MergeRefused(Exception):
    """The two records cannot be merged; the message says why."""


def relations():
    """Every relation from another model to ``Patient``: (label, model, field name)."""
    for rel in Patient._meta.get_fields(include_hidden=True):
        if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one):
            yield rel.related_model._meta.label, rel.related_model, rel.field.name


def _moving(duplicate):
    for label, model, field in relations():
        if label not in STAY:
            yield label, model, model._base_manager.filter(**{field: duplicate}), field


def what_moves(duplicate: Patient) -> list[tuple[str, int]]:
    """What a merge would move, as counts by kind (never the items themselves)."""
    counts = []
    for _label, model, rows, _field in _moving(duplicate):
        count = rows.count()
        if count:
            counts.append((str(model._meta.verbose_name_plural), count))
    return sorted(counts)


def check(keep: Patient, duplicate: Patient) -> None:
    """Refuse what cannot be one person's record (``MergeRefused``)."""
    if keep.pk == duplicate.pk:
        raise MergeRefused(_("Choose two different records."))
    if keep.birth_date != duplicate.birth_date:
        raise MergeRefused(_("The two records have different birth dates: they are not the same person."))
    if keep.ins and duplicate.ins and keep.ins != duplicate.ins:
        raise MergeRefused(_("The two records have different national health identifiers (INS)."))
    if keep.user_id and duplicate.user_id:
        raise MergeRefused(
            _("Both records have a login. Deactivate the duplicate's account first, then merge the records.")
        )


def _combine_links(keep, rows):
    from portal.careteams.models import CareLink

    kept = {link.team_id: link for link in CareLink.objects.filter(patient=keep)}
    strength = {CareLink.Status.BLOCKED: 2, CareLink.Status.ACTIVE: 1, CareLink.Status.ENDED: 0}
    for link in rows:
        mine = kept.get(link.team_id)
        if mine is None:
            link.patient = keep
            link.save(update_fields=["patient"])
            continue
        # The patient's block wins, then an active link; care began at the earlier date.
        if strength[link.status] > strength[mine.status]:
            mine.status, mine.status_changed_at, mine.ended_on = link.status, link.status_changed_at, link.ended_on
        mine.started_on = min(mine.started_on, link.started_on)
        mine.save(update_fields=["status", "status_changed_at", "ended_on", "started_on"])
        link.delete()


def _combine(label, keep, rows, field):
    if label == "careteams.CareLink":
        _combine_links(keep, rows)
    elif label == "careteams.ClinicianBlock":
        blocked = set(rows.model.objects.filter(patient=keep).values_list("clinician_id", flat=True))
        rows.filter(clinician_id__in=blocked).delete()
        rows.update(**{field: keep})
    elif label == "records.Export":  # one export of a kind under way per record: the kept one's goes on
        under_way = rows.model.objects.filter(patient=keep, state__in=["queued", "running"]).values("fingerprint")
        rows.filter(state__in=["queued", "running"], fingerprint__in=under_way).delete()
        rows.update(**{field: keep})
    elif label == "accounts.Representation":  # one open representation per person and record
        kept_open = rows.model.objects.filter(patient=keep, ended_at__isnull=True).values("representative")
        rows.filter(ended_at__isnull=True, representative__in=kept_open).update(
            ended_at=timezone.now(), end_reason=_("Records merged: the representation goes on on the record kept.")
        )
        rows.update(**{field: keep})
    elif label == "agenda.CalendarFeed":  # one feed per record: the kept one's stays, the other is revoked
        if rows.model.objects.filter(patient=keep).exists():
            rows.delete()
        else:
            rows.update(**{field: keep})


def merge(*, keep: Patient, duplicate: Patient) -> list[tuple[str, int]]:
    """Move ``duplicate``'s record into ``keep``; returns what moved (counts by kind)."""
    with transaction.atomic():
        first, second = sorted([keep.pk, duplicate.pk])
        locked = {p.pk: p for p in Patient.objects.select_for_update().filter(pk__in=[first, second]).order_by("pk")}
        if len(locked) != 2:
            raise MergeRefused(_("One of the records no longer exists or was merged already."))
        keep, duplicate = locked[keep.pk], locked[duplicate.pk]
        check(keep, duplicate)
        moved = what_moves(duplicate)
        for label, _model, rows, field in _moving(duplicate):
            if label in COMBINED:
                _combine(label, keep, rows, field)
            else:
                rows.update(**{field: keep})
        Patient.all_records.filter(merged_into=duplicate).update(merged_into=keep)
        user, identity = duplicate.user, None
        if duplicate.ins and not keep.ins:
            fields = ("ins", "ins_oid", "birth_name", "first_names", "used_name", "birth_place")
            identity = {name: getattr(duplicate, name) for name in fields}
        duplicate.user, duplicate.ins = None, None
        duplicate.merged_into, duplicate.merged_at = keep, timezone.now()
        duplicate.save(update_fields=["user", "ins", "merged_into", "merged_at"])
        if user is not None:
            keep.user = user
            keep.save(update_fields=["user"])
        if identity:  # the INS identity, with its traits, goes with the INS
            for name, value in identity.items():
                setattr(keep, name, value)
            if identity["birth_name"] and identity["first_names"]:
                keep.set_identity(
                    birth_name=identity["birth_name"],
                    first_names=identity["first_names"],
                    used_name=identity["used_name"],
                )
            keep.save()
    return moved


def record_ids(patient: Patient) -> list[int]:
    """``patient`` and the records merged into it: whose audit trails its history shows."""
    return [patient.pk, *Patient.all_records.filter(merged_into=patient).values_list("pk", flat=True)]
