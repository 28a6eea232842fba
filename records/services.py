"""Records workflows. Callers have already checked access through ``portal.access``."""

import csv
import datetime
import hashlib
import io
import logging
import math
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from portal import jobs
from portal.careteams.models import CareLink, ClinicianBlock
from portal.prepared import prepared
from portal.templatetags.french import elide
from records import files
from records.forms import ObservationForm, lab_csv_limits
from records.models import (
    Digest,
    Document,
    LabReport,
    News,
    Observation,
    ObservationRevision,
    Prescription,
    ProfileComment,
    RecordEvent,
)

logger = logging.getLogger(__name__)

# The reason a correction sent by software is stored with: the English text, translated when
# shown (records.templatetags.records_text.reason), never in the language of the request.
TEAM_SOFTWARE = gettext_noop("Sent by the team's software")
LAB_SOFTWARE = gettext_noop("Sent by the laboratory's software")
PRESCRIBING_SOFTWARE = gettext_noop("Sent by the prescribing software")
SOFTWARE_REASONS = (TEAM_SOFTWARE, LAB_SOFTWARE, PRESCRIBING_SOFTWARE)


def upload_document(*, author, patient, upload, title, category, care_date, team=None, confidential=False) -> Document:
    """Check, seal and store an uploaded file, then record it. Nothing is left
    behind when anything fails: no row without its file, no file without its row."""
    data, content_type = files.read_upload(upload)
    return _record_document(
        data=data,
        content_type=content_type,
        patient=patient,
        title=title,
        category=category,
        care_date=care_date,
        author=author,
        author_team=team,
        confidential=confidential,
    )


def publish_document(
    *, author, team, patient, data: bytes, title, category, care_date, master_identifier: str, replaces=None,
    confidential=False,
) -> tuple[Document, bool]:  # fmt: skip
    """A document sent by a team's software: the same checks, sealing and processing
    as an upload. Idempotent on (team, master_identifier): a retry, even one that
    arrives while the first is being written, gets the first document back, with
    False. ``replaces`` (a document of the same team and patient) is replaced by the
    new one through ``replace_document`` (history, the patient told); raises
    ``AlreadyCorrected`` when it was withdrawn or replaced already. ``confidential``
    (from the representatives) is the sender's label; software never lifts it: a
    replacement without it stays as confidential as the version it replaces, and a
    sending with it makes the document it names confidential."""
    existing = Document.objects.filter(author_team=team, master_identifier=master_identifier).first()
    if existing is not None:
        return _sent_again(existing, data, confidential), False
    content_type = files.check(data)
    fields = {"title": title, "category": category, "care_date": care_date, "master_identifier": master_identifier}
    try:
        with transaction.atomic():
            if replaces is not None:  # a correction, as a clinician's replacement is
                document = replace_document(
                    actor=author, team=team, document=replaces, data=data, content_type=content_type,
                    reason=TEAM_SOFTWARE, confidential=True if confidential else None, **fields,
                )  # fmt: skip
            else:
                document = _record_document(
                    data=data, content_type=content_type, patient=patient, author=author, author_team=team,
                    confidential=confidential, **fields,
                )  # fmt: skip
    except IntegrityError:
        # The same publication committed meanwhile (the unique constraint waited for it).
        existing = Document.objects.filter(author_team=team, master_identifier=master_identifier).first()
        if existing is None:
            raise
        return _sent_again(existing, data, confidential), False
    return document, True


def _sent_again(existing: Document, data: bytes, confidential: bool) -> Document:
    """A document sent again under its identifier: the same bytes are a retry (nothing
    changes, but a confidentiality label it now has); other bytes are a conflict, never
    dropped in silence (ValidationError "conflict": a correction is sent as a replacement)."""
    if hashlib.sha256(data).hexdigest() != existing.sha256:
        raise ValidationError(_("This identifier was already published with other content."), code="conflict")
    if confidential:
        set_confidential(item=existing, confidential=True)
    return existing


def _record_document(*, data, content_type, tell=True, **fields) -> Document:
    name, sha256, key_id = files.store(data)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                **fields,
                content_type=content_type,
                size=len(data),
                sha256=sha256,
                key_id=key_id,
                file_name=name,
            )
            if tell and fields.get("author_team") is not None:  # a team's publication, by form or API
                publish_news(patient=fields["patient"], kind=News.Kind.DOCUMENT, document=document)
            transaction.on_commit(lambda: _enqueue_processing(document.pk))
    except Exception:
        files.remove(name)
        raise
    return document


def _enqueue_processing(document_id, *, keep=True):
    """Hand the document's processing to Celery. When the broker is down, an upload's is
    kept in the database and relayed within a minute of its return (``portal.jobs``); the
    sweep's own is left to its next run (it would otherwise keep a row every run)."""
    from records.tasks import process_document

    if keep:
        jobs.enqueue(process_document, document_id)
        return
    try:
        process_document.delay(document_id)
    except Exception:  # broker down: the next sweep tries again
        logger.warning("broker unreachable; document %s left for the processing sweep", document_id)


def document_with_content(*, patient, sha256: str) -> Document | None:
    """A current document of ``patient``'s record (not withdrawn, not replaced) whose file
    has this SHA-256: what a copy of the same file into the record would duplicate."""
    return Document.objects.current().filter(patient=patient, sha256=sha256).order_by("pk").first()


class FileWithdrawn(Exception):
    """A withdrawn document's file is served to no one (it may be another person's): its
    page says it was withdrawn, and why."""


def read_document(*, document: Document) -> bytes:
    """The original bytes, verified against the hash taken at upload.
    Raises ``files.IntegrityError`` (and logs it, without health data) when altered,
    ``FileWithdrawn`` when the document was withdrawn."""
    if document.withdrawn_at:
        raise FileWithdrawn(document.pk)
    try:
        return files.load(document.file_name, document.sha256)
    except files.IntegrityError as error:
        logger.error("document %s failed its integrity check: %s", document.pk, error)
        raise


def read_preview(*, document: Document) -> bytes:
    """The preview's bytes, verified; ``FileWithdrawn`` as ``read_document``."""
    if document.withdrawn_at:
        raise FileWithdrawn(document.pk)
    return files.load(document.preview_name, document.preview_sha256)


def delete_document(*, document: Document) -> None:
    """Delete a document the patient uploaded, and its files once committed."""
    names = [document.file_name, document.preview_name]
    document.delete()
    transaction.on_commit(lambda: [files.remove(name) for name in names])


def set_confidential(*, item, confidential: bool) -> None:
    """A care team marks a document, a prescription or a lab report confidential from the
    patient's representatives (or lifts it): from now on they never see it."""
    if item.confidential != confidential:
        item.confidential = confidential
        item.save(update_fields=["confidential"])
    if confidential and isinstance(item, Prescription):
        from messaging import services as messaging

        messaging.keep_conversations_about(prescription=item)


def set_document_hidden(*, document: Document, hidden: bool) -> None:
    if document.hidden != hidden:
        document.hidden = hidden
        document.save(update_fields=["hidden"])


PREVIEW_SCRIPT = Path(__file__).with_name("preview.py")
PREVIEWED_TYPES = {"application/pdf", "image/jpeg", "image/png"}


def render_preview(*, data: bytes, content_type: str) -> bytes | None:
    """The preview image of a PDF (its first page) or of an image (without its
    metadata), or None when it gets none. Drawn in a child process held to
    PREVIEW_TIMEOUT_SECONDS and PREVIEW_MEMORY_BYTES and to PREVIEW_MAX_PIXELS: a
    hostile file costs a wait, never the worker's memory, and a kill leaves nothing
    half-done here (the result counts only once the child has finished)."""
    timeout = settings.PREVIEW_TIMEOUT_SECONDS
    command = [
        sys.executable, "-I", str(PREVIEW_SCRIPT), content_type, str(settings.PREVIEW_MAX_PIXELS),
        str(settings.PREVIEW_MEMORY_BYTES), str(math.ceil(timeout) + 1), str(os.getpid()),
    ]  # fmt: skip
    try:
        # Our own script and numbers; the untrusted file goes to its stdin only.
        result = subprocess.run(command, input=data, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:  # run() has killed the child
        logger.warning("preview drawing stopped after %s s", timeout)
        return None
    if result.returncode != 0:
        logger.warning("no preview drawn (exit status %s)", result.returncode)
        return None
    return result.stdout


def process_document(*, document_id: int) -> None:
    """After upload: draw the preview (a PDF's first page, an image without its
    metadata) and mark the document ready. Idempotent: a ready document is left as it
    is. Bounded: each attempt is counted before drawing, in its own transaction, so
    runs killed mid-draw (a worker's hard time limit, a crash) add up, and after
    PREVIEW_MAX_ATTEMPTS the document is ready without a preview (still downloadable)."""
    with transaction.atomic():
        document = (
            Document.objects.select_for_update().filter(pk=document_id, status=Document.Status.PROCESSING).first()
        )
        if document is None:
            return
        if document.preview_attempts >= settings.PREVIEW_MAX_ATTEMPTS:
            logger.warning("document %s left without preview after %s attempts", document.pk, document.preview_attempts)
            document.status = Document.Status.READY
            document.save(update_fields=["status"])
            return
        document.preview_attempts += 1
        document.save(update_fields=["preview_attempts"])
    fields = ["status"]
    if document.content_type in PREVIEWED_TYPES and not document.withdrawn_at:  # a withdrawn file is read by no one
        try:
            preview = render_preview(data=read_document(document=document), content_type=document.content_type)
        except files.IntegrityError:
            return
        if preview is None:  # it is still served, without preview
            logger.warning("no preview for document %s", document.pk)
        else:
            document.preview_name, document.preview_sha256, _ = files.store(preview, folder="previews")
            fields += ["preview_name", "preview_sha256"]
    document.status = Document.Status.READY
    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document.pk)
        if locked.status == Document.Status.READY:  # another run finished first
            if "preview_name" in fields:
                files.remove(document.preview_name)
            return
        document.save(update_fields=fields)


def sweep_unprocessed_documents(*, older_than_minutes=5) -> int:
    """Periodic: enqueue documents still processing (the broker was down at upload, or
    a run was killed); those past PREVIEW_MAX_ATTEMPTS are made ready without a preview
    instead of being tried again."""
    cutoff = timezone.now() - datetime.timedelta(minutes=older_than_minutes)
    stale = Document.objects.filter(status=Document.Status.PROCESSING, created_at__lte=cutoff)
    given_up = stale.filter(preview_attempts__gte=settings.PREVIEW_MAX_ATTEMPTS).update(status=Document.Status.READY)
    if given_up:
        logger.warning("%s documents left without preview after %s attempts", given_up, settings.PREVIEW_MAX_ATTEMPTS)
    ids = list(stale.values_list("pk", flat=True))
    for document_id in ids:
        _enqueue_processing(document_id, keep=False)
    return len(ids)


def set_team_blocked(*, patient, link: CareLink, blocked: bool) -> None:
    """Block a care team (it loses all access at once) or unblock it."""
    status = CareLink.Status.BLOCKED if blocked else CareLink.Status.ACTIVE
    if link.status == CareLink.Status.ENDED or link.status == status:
        return
    link.status = status
    link.status_changed_at = timezone.now()
    link.save(update_fields=["status", "status_changed_at"])


def set_clinician_blocked(*, patient, clinician, blocked: bool) -> None:
    """Block one clinician (whatever their teams) or unblock them."""
    if blocked:
        ClinicianBlock.objects.get_or_create(patient=patient, clinician=clinician)
    else:
        ClinicianBlock.objects.filter(patient=patient, clinician=clinician).delete()


def request_renewal(*, user, prescription):
    """Ask the prescribing team to renew a renewable prescription: it arrives in
    their inbox as a conversation of type renewal. An open request for the same
    prescription is reused, never duplicated."""
    if not prescription.renewable:
        raise ValidationError(_("This prescription cannot be renewed."), code="not_renewable")
    with transaction.atomic():
        # One request at a time per prescription: a simultaneous one waits here, then
        # finds the conversation this one opened (a new statement sees it once committed).
        Prescription.objects.select_for_update().filter(pk=prescription.pk).first()
        return _open_renewal(user=user, prescription=prescription)


def _open_renewal(*, user, prescription):
    from messaging import services as messaging
    from messaging.models import Conversation

    existing = Conversation.objects.filter(
        prescription=prescription, kind=Conversation.Kind.RENEWAL, status=Conversation.Status.OPEN
    ).first()
    if existing is not None:
        return existing, False
    subject = _("Renewal: %(medication)s") % {"medication": prescription.medication}
    details = {"medication": prescription.medication, "posology": prescription.posology}
    if user.pk == prescription.patient.user_id:
        body = _("Please renew my prescription: %(medication)s, %(posology)s.") % details
    else:  # someone acting for the patient (a parent, a helper) asks
        body = elide(
            _("Please renew the prescription of %(name)s: %(medication)s, %(posology)s.")
            % {**details, "name": prescription.patient.full_name}
        )
    conversation = messaging.start_conversation(
        author=user,
        patient=prescription.patient,
        team=prescription.team,
        subject=subject[:200],
        kind=Conversation.Kind.RENEWAL,
        body=body,
        prescription=prescription,
    )
    return conversation, True


def add_lab_report(
    *, author, team, patient, title, collected_on, observations, source_id="", confidential=False
) -> LabReport:
    """Record a lab report and its observations, all or nothing."""
    with transaction.atomic():
        report = LabReport.objects.create(
            patient=patient, title=title, collected_on=collected_on, author=author, team=team, source_id=source_id,
            confidential=confidential,
        )  # fmt: skip
        Observation.objects.bulk_create(
            [Observation(report=report, patient=patient, **observation) for observation in observations]
        )
        publish_news(patient=patient, kind=News.Kind.RESULT, lab_report=report)
    return report


def publish_lab_report(
    *, author, team, patient, source_id: str, title, collected_on, observations, status="final", confidential=False
) -> tuple[LabReport, str]:
    """A lab report sent by a team's software, keyed by the sender's ``source_id``.
    A first sending creates it ("created"); the same again changes nothing
    ("unchanged"); an ``amended`` or ``corrected`` one updates the values of the
    observations it names (matched by code), keeping each earlier value in
    ObservationRevision, and adds the new ones ("updated"). Raises
    ValidationError(code="unknown_report") for an amendment of nothing.
    ``confidential`` (from the representatives), the sender's label, makes the report
    confidential, at its first sending or a later one; software never lifts it."""
    with transaction.atomic():
        report = LabReport.objects.select_for_update().filter(team=team, source_id=source_id).first()
        if report is None:
            if status != "final":
                raise ValidationError(_("There is no earlier report to amend."), code="unknown_report")
            try:
                with transaction.atomic():
                    report = add_lab_report(
                        author=author,
                        team=team,
                        patient=patient,
                        title=title,
                        collected_on=collected_on,
                        observations=observations,
                        source_id=source_id,
                        confidential=confidential,
                    )
                return report, "created"
            except IntegrityError:
                # The same identifier committed meanwhile: compared below as any sent again
                # (the same values are a retry, others a conflict), not taken as a retry.
                report = LabReport.objects.select_for_update().get(team=team, source_id=source_id)
        if report.patient_id != patient.pk:
            raise ValidationError(_("This report id was already used for another patient."), code="other_patient")
        labelled = confidential and not report.confidential
        if labelled:
            set_confidential(item=report, confidential=True)
        existing = {(row.code_system, row.loinc): row for row in report.observations.all()}
        if status == "final":
            # A retry: the same report, or a conflict never dropped in silence (other
            # values are sent as amended or corrected).
            if not _same_report(report, existing, title=title, collected_on=collected_on, observations=observations):
                raise ValidationError(
                    _("This report identifier was already published with other values."), code="conflict"
                )
            return report, "updated" if labelled else "unchanged"
        revisions, changed, added = [], [], []
        for values in observations:
            row = existing.get((values.get("code_system", ""), values["loinc"]))
            if row is None:
                added.append(Observation(report=report, patient=patient, status=status, **values))
                continue
            fields = _OBSERVATION_FIELDS
            if all(getattr(row, name) == values.get(name, getattr(row, name)) for name in fields):
                continue
            revisions.append(
                ObservationRevision(
                    observation=row, value=row.value, unit=row.unit, low=row.low, high=row.high,
                    interpretation=row.interpretation, status=row.status,
                )
            )  # fmt: skip
            for name in fields:
                setattr(row, name, values.get(name, getattr(row, name)))
            row.status, row.corrected_at = status, timezone.now()
            changed.append(row)
        ObservationRevision.objects.bulk_create(revisions)
        Observation.objects.bulk_update(changed, [*_OBSERVATION_FIELDS, "status", "corrected_at"])
        Observation.objects.bulk_create(added)
        # Each changed value is a correction of the record, as a clinician's is.
        reason = LAB_SOFTWARE
        RecordEvent.objects.bulk_create(
            RecordEvent(
                patient=patient,
                actor=author,
                team=team,
                kind=RecordEvent.Kind.RESULT_CORRECTED,
                target=row.name[:255],
                reason=reason,
                observation=row,
            )
            for row in changed
        )
        if changed or added:
            publish_news(patient=patient, kind=News.Kind.CORRECTION, lab_report=report)
        return report, "updated"


_OBSERVATION_FIELDS = ("name", "value", "unit", "low", "high", "interpretation")


def _same_report(report, existing, *, title, collected_on, observations) -> bool:
    """Whether a report sent again says what the stored one says (its values compared as
    numbers: 6.1 is 6.1000)."""
    if (report.title, report.collected_on) != (title, collected_on) or len(observations) != len(existing):
        return False
    for values in observations:
        row = existing.get((values.get("code_system", ""), values["loinc"]))
        if row is None or any(getattr(row, name) != values.get(name) for name in _OBSERVATION_FIELDS):
            return False
    return True


# What a prescription sent again must say the same (else it is a conflict, not a retry).
_PRESCRIPTION_FIELDS = ("medication", "dosage", "frequency", "route", "start_date", "renewable")


def publish_prescription(*, prescriber, team, patient, source_id: str, status: str, replaces_source_id="", **fields):
    """A prescription sent by a team's software, keyed by its ``source_id``, through the
    same services as a clinician's form: ``add_prescription`` (the patient is told),
    ``stop_prescription`` and ``replace_prescription`` (kept in the record's history).
    ``status`` is FHIR's: "active" records it (a retry changes nothing); "stopped" stops
    it (today, or at its end date when that has passed); "completed" gives it its end date. With
    ``replaces_source_id`` the new one replaces the team's earlier one. Returns
    (prescription, "created" | "updated" | "unchanged"). ``fields["confidential"]``
    (from the representatives) is the sender's label; software never lifts it: a
    replacement without it stays as confidential as the one it replaces, and a later
    sending with it makes the prescription confidential."""
    today = timezone.localdate()
    reason = PRESCRIBING_SOFTWARE
    with transaction.atomic():
        prescription = Prescription.objects.select_for_update().filter(team=team, source_id=source_id).first()
        if prescription is not None:
            if prescription.patient_id != patient.pk:
                raise ValidationError(
                    _("This prescription id was already used for another patient."), code="other_patient"
                )
            _same_prescription_or_conflict(prescription, fields)
            labelled = fields.get("confidential", False) and not prescription.confidential
            if labelled:
                set_confidential(item=prescription, confidential=True)
            unchanged = "updated" if labelled else "unchanged"
            if status == "active" or prescription.stopped_on is not None:
                return prescription, unchanged
            if status == "stopped":
                try:
                    stop_prescription(
                        actor=prescriber, team=team, prescription=prescription,
                        stopped_on=_stopped_on(fields, today), reason=reason,
                    )  # fmt: skip
                except AlreadyCorrected:
                    return prescription, unchanged
                return prescription, "updated"
            end = fields.get("end_date") or today
            if prescription.end_date is not None and prescription.end_date <= end:
                return prescription, unchanged
            prescription.end_date = max(end, prescription.start_date)
            prescription.save(update_fields=["end_date"])
            return prescription, "updated"
        if status == "completed" and not fields.get("end_date"):
            fields["end_date"] = max(today, fields["start_date"])
        new = Prescription(patient=patient, prescriber=prescriber, team=team, source_id=source_id, **fields)
        try:
            with transaction.atomic():
                if replaces_source_id:
                    earlier = Prescription.objects.filter(
                        team=team, patient=patient, source_id=replaces_source_id
                    ).first()
                    if earlier is None:
                        raise ValidationError(
                            _("There is no earlier prescription to replace."), code="unknown_prescription"
                        )
                    new.confidential = new.confidential or earlier.confidential
                    try:
                        prescription = replace_prescription(
                            actor=prescriber, team=team, prescription=earlier, new=new, reason=reason
                        )
                    except AlreadyCorrected:
                        raise ValidationError(
                            _("The earlier prescription was already stopped or replaced."), code="already_corrected"
                        ) from None
                else:
                    prescription = add_prescription(prescription=new)
                if status == "stopped":
                    stop_prescription(
                        actor=prescriber, team=team, prescription=prescription,
                        stopped_on=_stopped_on(fields, today), reason=reason,
                    )  # fmt: skip
        except IntegrityError:  # the same identifier committed meanwhile: a retry only if it says the same
            prescription = Prescription.objects.get(team=team, source_id=source_id)
            if prescription.patient_id != patient.pk:
                raise ValidationError(
                    _("This prescription id was already used for another patient."), code="other_patient"
                ) from None
            _same_prescription_or_conflict(prescription, fields)
            return prescription, "unchanged"
        return prescription, "created"


def _same_prescription_or_conflict(prescription, fields) -> None:
    """A prescription sent again must say what the stored one says: else it is a conflict
    (ValidationError, code "conflict"), never taken as a retry."""
    if any(name in fields and getattr(prescription, name) != fields[name] for name in _PRESCRIPTION_FIELDS):
        raise ValidationError(
            _("This prescription identifier was already published with other content."), code="conflict"
        )


def _stopped_on(fields, today):
    """When software says "stopped": today, or the end it gives if that has passed (a
    planned end still to come is not when it stopped)."""
    end = fields.get("end_date")
    return min(end, today) if end else today


CSV_COLUMNS = ["loinc", "name", "value", "unit", "low", "high"]
# The columns' French names, as a French lab's spreadsheet heads them (accents optional).
CSV_FRENCH_COLUMNS = {
    "code loinc": "loinc", "nom": "name", "libellé": "name", "libelle": "name", "analyse": "name",
    "valeur": "value", "résultat": "value", "resultat": "value", "unité": "unit", "unite": "unit",
    "min": "low", "bas": "low", "max": "high", "haut": "high",
}  # fmt: skip
CSV_ERRORS_SHOWN = 20


def _csv_text(data: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark), else Windows-1252, what
    Excel writes for "CSV (séparateur : point-virgule)" on a French Windows."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError(_("The CSV file must be UTF-8 text."), code="encoding")


def parse_observations_csv(data: bytes) -> list[dict]:
    """Observations from a lab CSV file (columns: loinc, name, value, unit, low, high;
    comma or semicolon separated, decimal point or comma; quotes as RFC 4180 says).
    Every row is checked by the observation form, the rules of a row typed in.
    Whole or refused: raises ValidationError naming each bad line, its column and
    what is wrong, or the limit (rows, bytes) the file is over."""
    if len(data) > settings.LAB_CSV_MAX_BYTES:
        raise files.too_large(len(data), settings.LAB_CSV_MAX_BYTES)
    text = _csv_text(data)
    header = text.partition("\n")[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    # The excel dialect reads RFC 4180: a doubled quote inside quotes is one quote.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    observations, errors, rows = [], [], 0
    try:
        written = [name.strip() for name in next(reader, [])]
        columns = [CSV_FRENCH_COLUMNS.get(name.lower(), name.lower()) for name in written]
        missing = [name for name in CSV_COLUMNS if name not in columns]
        if missing:  # each named as the file may name it, in English or in French
            named = [
                " / ".join([name, *(french for french, column in CSV_FRENCH_COLUMNS.items() if column == name)])
                for name in missing
            ]
            raise ValidationError(
                _("The CSV file lacks these columns: %(columns)s.") % {"columns": ", ".join(named)}, code="columns"
            )
        position = {name: columns.index(name) for name in CSV_COLUMNS}
        heading = {name: written[index] for name, index in position.items()}  # errors name the file's own
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if rows > settings.LAB_CSV_MAX_ROWS:
                message = _(
                    "This CSV file has more than %(rows)s rows, the limit for one report: "
                    "split it into several reports."
                )
                raise ValidationError(message % lab_csv_limits(), code="too_many_rows")
            values = {name: row[index] if index < len(row) else "" for name, index in position.items()}
            form = ObservationForm(values)  # a decimal comma reads as every form's does (portal.apps)
            if form.is_valid():
                observations.append(form.cleaned_data)
            else:
                errors += _line_errors(reader.line_num, form, heading)
    except csv.Error:
        errors.append(
            _("Line %(line)d cannot be read: a field is too long or a quote is misplaced.") % {"line": reader.line_num}
        )
    if errors:
        raise ValidationError(_shown_errors(errors), code="lines")
    if not observations:
        raise ValidationError(_("The CSV file has no results."), code="empty")
    return observations


def _line_errors(line, form, heading) -> list[str]:
    return [
        _("Line %(line)d, column %(column)s: %(message)s")
        % {"line": line, "column": heading.get(column, column), "message": message}
        if column != NON_FIELD_ERRORS
        else _("Line %(line)d: %(message)s") % {"line": line, "message": message}
        for column, messages in form.errors.items()
        for message in messages
    ]


def _shown_errors(errors: list[str]) -> list[str]:
    """The first errors, and how many more: a form with a thousand errors helps no one."""
    more = len(errors) - CSV_ERRORS_SHOWN
    if more <= 0:
        return errors
    count = ngettext("… and %(count)d more error.", "… and %(count)d more errors.", more) % {"count": more}
    return [*errors[:CSV_ERRORS_SHOWN], count]


# --- Telling patients what is new ---------------------------------------------------

DIGEST_INTERVAL = datetime.timedelta(minutes=15)
# Which preference (NoticePreference.Kind) each item answers to.
TOPIC_OF_ITEM = {
    "document_id": "documents",
    "lab_report_id": "results",
    "prescription_id": "prescriptions",
    "appointment_id": "appointments",
}


def topic_of(news: News) -> str:
    """The preference kind a piece of news answers to: its item's."""
    return next(topic for field, topic in TOPIC_OF_ITEM.items() if getattr(news, field) is not None)


def publish_news(*, patient, kind: str, document=None, lab_report=None, prescription=None, appointment=None) -> News:
    """Note, in the caller's transaction, that a care team published something for
    ``patient`` (or booked, changed or cancelled an appointment): a "new" marker until
    they open it, and an email to their login (a digest: at most one per
    ``DIGEST_INTERVAL``) sent after commit."""
    from portal import access

    news = News.objects.create(
        patient=patient,
        kind=kind,
        document=document,
        lab_report=lab_report,
        prescription=prescription,
        appointment=appointment,
    )
    if patient.user_id is not None:
        schedule_digest(user=patient.user)
    item = document or lab_report or prescription
    if item is not None:
        part, confidential = access.MODEL_PART[type(item).__name__][0], item.confidential
    else:  # an appointment: looking after the record
        part, confidential = access.MANAGE, appointment.confidential
    for representative in access.representatives_told(patient, part, confidential=confidential):
        schedule_digest(user=representative)
    return news


def schedule_digest(*, user) -> Digest:
    """The pending digest of ``user``, made if there is none: due now, or
    ``DIGEST_INTERVAL`` after the last one sent. Its delivery is enqueued after commit.
    The pending row is locked, so news written while a digest is being sent waits for
    it, then gets a new one: nothing falls between two emails."""
    pending = Digest.objects.select_for_update().filter(user=user, status=Digest.Status.PENDING).first()
    if pending is not None:
        return pending
    last_sent = (
        Digest.objects.filter(user=user, status=Digest.Status.SENT)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    now = timezone.now()
    due_at = max(now, last_sent + DIGEST_INTERVAL) if last_sent else now
    try:
        with transaction.atomic():
            digest = Digest.objects.create(user=user, due_at=due_at)
    except IntegrityError:  # another transaction made the pending one meanwhile
        return Digest.objects.get(user=user, status=Digest.Status.PENDING)
    transaction.on_commit(partial(enqueue_digests, [(digest.pk, due_at)]))
    return digest


def enqueue_digests(rows) -> int:
    """Hand digests (id, due time) to Celery; returns how many were. When the broker is
    unreachable they stay pending for the periodic relay."""
    from records.tasks import deliver_digest

    for count, (digest_id, due_at) in enumerate(rows):
        try:
            deliver_digest.apply_async(args=[digest_id], eta=due_at if due_at > timezone.now() else None)
        except Exception:  # any broker failure: the outbox row is the safety net
            logger.warning("broker unreachable; %d digest(s) left for the relay", len(rows) - count)
            return count
    return len(rows)


def relay_due_digests() -> int:
    """Periodic: enqueue the pending digests that are due (the broker was down, or a
    worker lost its scheduled task)."""
    rows = list(
        Digest.objects.filter(status=Digest.Status.PENDING, due_at__lte=timezone.now())
        .order_by("due_at")
        .values_list("pk", "due_at")[:500]
    )
    return enqueue_digests(rows)


def deliver_digest(*, digest_id: int) -> bool:
    """Send one digest email, exactly once, when it is due: the row is locked and only a
    pending, due row is sent. It names how many items of each kind are new, nothing
    else (no title, no team, no value). News the patient does not want by email, or has
    seen in Carnet meanwhile, is counted as told. Returns True when an email went out."""
    from django.utils.translation import gettext_lazy

    from portal import access
    from portal.accounts.services import wants_notice
    from portal.mail import send_bilingual

    with transaction.atomic():
        digest = Digest.objects.select_for_update().select_related("user").filter(pk=digest_id).first()
        if digest is None or digest.status != Digest.Status.PENDING or digest.due_at > timezone.now():
            return False
        user = digest.user
        news = list(News.objects.filter(patient__user=user, digest__isnull=True, created_at__gte=user.date_joined))
        # What the patient opened meanwhile (in Carnet, before the email) is no news to tell.
        unseen = [item for item in news if item.seen_at is None]
        wanted = [item for item in unseen if wants_notice(user=user, kind=topic_of(item))] if user.is_active else []
        # News of the records ``user`` acts for, since their previous digest: told in one
        # line without kind or count (nothing of another person's health in an email).
        previous = Digest.objects.filter(user=user).exclude(pk=digest.pk).order_by("-due_at").first()
        since = previous.due_at if previous else user.date_joined
        represented = [
            item
            for item in access.news_for_representative(user).filter(created_at__gt=since, created_at__lte=digest.due_at)
            if wants_notice(user=user, kind=topic_of(item))
        ] if user.is_active else []  # fmt: skip
        digest.attempts += 1
        News.objects.filter(pk__in=[item.pk for item in news]).update(digest=digest)
        if not wanted and not represented:
            digest.status = Digest.Status.SKIPPED
            digest.save(update_fields=["status", "attempts"])
            return False
        counts = {kind: sum(1 for item in wanted if item.kind == kind) for kind in News.Kind.values}
        context = {"counts": counts, "represented": bool(represented), "url": f"{settings.SITE_URL}/my/"}
        send_bilingual(user.email, gettext_lazy("New on Carnet"), "records/email/digest.txt", context)
        digest.status, digest.sent_at = Digest.Status.SENT, timezone.now()
        digest.save(update_fields=["status", "sent_at", "attempts"])
        return True


def mark_news_seen(*, user, patient, documents=(), lab_reports=(), prescriptions=(), appointments=()) -> int:
    """The patient opened these items: their "new" markers go. Only the patient's own
    opening counts (a professional's reading is no news to them)."""
    if patient.user_id is None or patient.user_id != user.pk:
        return 0
    items = (
        Q(document__in=documents)
        | Q(lab_report__in=lab_reports)
        | Q(prescription__in=prescriptions)
        | Q(appointment__in=appointments)
    )
    return News.objects.unseen().filter(items, patient=patient).update(seen_at=timezone.now())


def has_unseen_news(field: str, patient_id) -> Exists:
    """Whether the item of the outer query (a document, a lab report, a prescription:
    ``field`` is News's "document"...) has news of ``patient_id`` not seen yet: an
    annotation, one probe of the item's news per row, where ``unseen_news_among`` is a
    query of its own."""
    return Exists(News.objects.unseen().filter(**{field: OuterRef("pk")}, patient=patient_id))


def unseen_news_ids(*, patient, field: str, items) -> set[int]:
    """Of ``items``, the ids of those with unseen news (``field``: "document_id", ...), in one query."""
    return unseen_news_ids_of(patient=patient, **{field: items})[field]


def unseen_news_ids_of(*, patient, **items) -> dict[str, set[int]]:
    """Of ``items`` of several kinds at once (by field: "document_id"=[...],
    "lab_report_id"=[...], ...), the ids of those with unseen news, by field, in one
    query (none when there are no items)."""
    return unseen_news_among(patient=patient, **{field: [item.pk for item in rows] for field, rows in items.items()})


def unseen_news_among(*, patient, **ids) -> dict[str, set[int]]:
    """``unseen_news_ids_of`` given the items' ids (by field: "document_id"=[1, 2], ...)."""
    found = {field: set() for field in ids}
    if not any(ids.values()):
        return found
    every_id = [pk for pks in ids.values() for pk in pks]
    counts = tuple(len(pks) for pks in ids.values())
    for row in _unseen_news_of(getattr(patient, "pk", patient), *every_id, fields=tuple(ids), counts=counts):
        for field, value in zip(ids, row, strict=True):
            if value is not None and value in ids[field]:
                found[field].add(value)
    return found


@prepared  # a page of lab reports' values, the patient's or their care team's
def _observations_of(*report_ids):
    return Observation.objects.filter(report__in=report_ids)


def observations_by_report(report_ids) -> dict[int, list[Observation]]:
    """The values of the lab reports ``report_ids`` (that the reader may see), by report,
    each report's in the model's order: one prepared query, none for no report."""
    found = {pk: [] for pk in report_ids}
    for observation in _observations_of(*found) if found else ():
        found[observation.report_id].append(observation)
    return found


@prepared
def _unseen_news_of(patient_id, *ids, fields, counts):
    """The unseen news of ``patient_id`` about ``ids``: ``counts[i]`` of them of
    ``fields[i]`` ("document_id"...), one after the other; each row their ``fields``."""
    wanted, start = Q(), 0
    for field, count in zip(fields, counts, strict=True):
        if count:
            wanted |= Q(**{f"{field}__in": ids[start : start + count]})
        start += count
    return News.objects.unseen().filter(wanted, patient=patient_id).values_list(*fields).order_by()


# What a line of the dashboard's feed shows of a piece of news and of its item.
RECENT_NEWS_FIELDS = (
    "kind", "created_at", "seen_at", "abnormal",
    "document_id", "document__title", "document__author_team__name",
    "lab_report_id", "lab_report__title", "lab_report__team__name", "lab_report__collected_on",
    "prescription_id", "prescription__medication", "prescription__team__name",
    "appointment_id", "appointment__starts_at", "appointment__team__name",
)  # fmt: skip


def recent_news(*, news, limit: int) -> list[dict]:
    """The latest ``limit`` of ``news`` (one record's, as its reader may see them: see
    ``portal.access``), newest first, as values (``RECENT_NEWS_FIELDS``): what their items
    are called and by which team, read in the same query, and, for a lab report,
    ``abnormal``: whether any of its values is flagged (``Observation.flag``: by the
    laboratory, else by its reference range). A new
    document since withdrawn or replaced is left out (its withdrawal or its correction
    is news of its own)."""
    return list(recent_news_query(news=news, limit=limit))


def recent_news_query(*, news, limit: int):
    """``recent_news``'s query."""
    out_of_range = Q(interpretation="") & (Q(value__lt=F("low")) | Q(value__gt=F("high")))
    flagged = Observation.objects.filter(report=OuterRef("lab_report")).filter(
        Q(interpretation__in=Observation.ABNORMAL_INTERPRETATIONS) | out_of_range
    )
    gone = Q(kind=News.Kind.DOCUMENT) & (
        Q(document__withdrawn_at__isnull=False) | Q(document__replaced_by__isnull=False)
    )
    return (
        news.exclude(gone)
        .annotate(abnormal=Exists(flagged))
        .order_by("-created_at", "-pk")
        .values(*RECENT_NEWS_FIELDS)[:limit]
    )


RENEWAL_NOTICE = datetime.timedelta(days=14)


def renewals_due(*, prescriptions, today, until=None):
    """Of ``prescriptions`` (already scoped by the access policy), the current renewable
    ones ending within ``RENEWAL_NOTICE`` (by ``until``, when given): time to ask for a
    renewal. Soonest first."""
    until = until or today + RENEWAL_NOTICE
    return (
        prescriptions.current(today)
        .filter(renewable=True, end_date__gte=today, end_date__lte=until)
        .select_related("team")
        .order_by("end_date", "pk")
    )


@transaction.atomic
def add_prescription(*, prescription: Prescription) -> Prescription:
    """Record a prescription a clinician wrote (patient, prescriber and team set), and tell the patient."""
    prescription.save()
    publish_news(patient=prescription.patient, kind=News.Kind.PRESCRIPTION, prescription=prescription)
    return prescription


# --- Corrections, with history --------------------------------------------------------


class AlreadyCorrected(Exception):
    """The item was stopped, replaced or withdrawn meanwhile (a double submit, a colleague)."""


# Per kind of item: the RecordEvent field naming it, and its name in the patient's words.
_EVENT_FIELD = {Prescription: "prescription", Document: "document", Observation: "observation"}
_TARGET = {Prescription: "medication", Document: "title", Observation: "name"}


def _is_corrected(item) -> bool:
    if isinstance(item, Prescription):
        return item.stopped_on is not None or Prescription.objects.filter(replaces=item).exists()
    if isinstance(item, Document):
        return not item.is_correctable
    return False  # a lab value may be corrected again; each earlier value is kept


def _correct_item(*, item, actor, team, kind: str, reason: str, change, news: str = News.Kind.CORRECTION):
    """The one way a care team corrects an item of a record (a prescription, a document,
    a lab value): the item's row is locked, refused with ``AlreadyCorrected`` when it was
    stopped, replaced or withdrawn meanwhile; ``change(locked)`` does the correction and
    returns the item the patient is told about (the item, or its new version); the
    correction becomes an event of the append-only history; the patient is told
    (content-free, through the digest). All in one transaction."""
    model = type(item)
    with transaction.atomic():
        locked = model.objects.select_for_update().select_related("patient").get(pk=item.pk)
        if _is_corrected(locked):
            raise AlreadyCorrected
        told = change(locked)
        RecordEvent.objects.create(
            patient=locked.patient,
            actor=actor,
            team=team,
            kind=kind,
            target=getattr(locked, _TARGET[model])[:255],
            reason=reason.strip(),
            **{_EVENT_FIELD[model]: locked},
        )
        about = told.report if isinstance(told, Observation) else told
        publish_news(patient=locked.patient, kind=news, **{_NEWS_FIELD[type(about)]: about})
    return told


_NEWS_FIELD = {Prescription: "prescription", Document: "document", LabReport: "lab_report"}


def stop_prescription(*, actor, team, prescription: Prescription, stopped_on, reason: str) -> Prescription:
    """Stop ``prescription`` from ``stopped_on``, for ``reason``: it stays in the record,
    shown as stopped; the patient reads the event and is told. Raises
    ``AlreadyCorrected`` when it was stopped or replaced already."""

    def stop(locked):
        locked.stopped_on, locked.stop_reason = stopped_on, reason.strip()
        locked.save(update_fields=["stopped_on", "stop_reason"])
        return locked

    return _correct_item(
        item=prescription, actor=actor, team=team, kind=RecordEvent.Kind.PRESCRIPTION_STOPPED, reason=reason,
        change=stop, news=News.Kind.PRESCRIPTION_STOPPED,
    )  # fmt: skip


def replace_prescription(*, actor, team, prescription: Prescription, new: Prescription, reason: str) -> Prescription:
    """Replace ``prescription`` with ``new`` (unsaved; patient, prescriber and team are
    set here): the old one stays, shown as replaced. Raises ``AlreadyCorrected`` when it
    was stopped or replaced already."""

    def replace(old):
        new.patient, new.prescriber, new.team, new.replaces = old.patient, actor, team, old
        try:
            with transaction.atomic():
                new.save()
        except IntegrityError:  # replaced meanwhile (the one-to-one link is unique)
            raise AlreadyCorrected from None
        return new

    return _correct_item(
        item=prescription, actor=actor, team=team, kind=RecordEvent.Kind.PRESCRIPTION_REPLACED, reason=reason,
        change=replace,
    )  # fmt: skip


def withdraw_document(*, actor, team, document: Document, reason: str) -> Document:
    """Withdraw a document ``team`` published (misfiled, wrong patient): it leaves the
    patient's lists, keeps its file, and the history says who, when and why; the
    patient is told. Raises ``AlreadyCorrected`` when withdrawn or replaced already."""

    def withdraw(locked):
        locked.withdrawn_at, locked.withdrawn_by, locked.withdraw_reason = timezone.now(), actor, reason.strip()
        locked.save(update_fields=["withdrawn_at", "withdrawn_by", "withdraw_reason"])
        return locked

    return _correct_item(
        item=document, actor=actor, team=team, kind=RecordEvent.Kind.DOCUMENT_WITHDRAWN, reason=reason,
        change=withdraw, news=News.Kind.WITHDRAWAL,
    )  # fmt: skip


def replace_document(
    *, actor, team, document: Document, data: bytes, content_type: str, title, category, care_date, reason: str,
    master_identifier: str = "", confidential: bool | None = None,
) -> Document:  # fmt: skip
    """Publish a corrected version of ``document`` (checked bytes, as an upload): the
    patient sees the new one, which says it replaced an earlier version; the old one
    leaves the lists and stays in the history. The new version is confidential from the
    representatives as ``confidential`` says, or, when it says nothing, as the old one
    was: a correction never shows them what was kept from them; and hidden from the
    professionals when the patient hid the old one (their choice is about the document,
    whichever version). Raises
    ``AlreadyCorrected`` when it was withdrawn or replaced already."""

    def replace(old):
        new = _record_document(
            data=data, content_type=content_type, patient=old.patient, title=title, category=category,
            care_date=care_date, author=actor, author_team=team, master_identifier=master_identifier, tell=False,
            confidential=old.confidential if confidential is None else confidential, hidden=old.hidden,
        )  # fmt: skip
        old.replaced_by = new
        old.save(update_fields=["replaced_by"])
        return new

    return _correct_item(
        item=document, actor=actor, team=team, kind=RecordEvent.Kind.DOCUMENT_REPLACED, reason=reason,
        change=replace,
    )  # fmt: skip


def correct_observation(*, actor, team, observation: Observation, value, reason: str) -> Observation:
    """Correct a lab value: the earlier one is kept in the test's history
    (ObservationRevision, with the reason), the value shows as corrected, the history
    of the record has the event and the patient is told."""

    def correct(locked):
        ObservationRevision.objects.create(
            observation=locked, value=locked.value, unit=locked.unit, low=locked.low, high=locked.high,
            status=locked.status, reason=reason.strip(),
        )  # fmt: skip
        locked.value, locked.status, locked.corrected_at = value, "corrected", timezone.now()
        locked.save(update_fields=["value", "status", "corrected_at"])
        return locked

    return _correct_item(
        item=observation, actor=actor, team=team, kind=RecordEvent.Kind.RESULT_CORRECTED, reason=reason,
        change=correct,
    )  # fmt: skip


# --- Medical profile -------------------------------------------------------------------


@transaction.atomic
def add_profile_entry(*, entry, author, team=None):
    """Save a profile entry (patient set). A professional's (``team`` given) is theirs
    to stand by: shown with author and team, read-only to the patient, and an event of
    the record's history."""
    entry.author, entry.team = author, team
    entry.save()
    if team is not None:
        RecordEvent.objects.create(
            patient=entry.patient, actor=author, team=team, kind=RecordEvent.Kind.PROFILE_ADDED,
            target=entry.describe()[:255], **{type(entry).__name__.lower(): entry},
        )  # fmt: skip
    return entry


def withdraw_profile_entry(*, actor, team, entry, reason: str):
    """Withdraw a profile entry ``team`` wrote (entered in error, or about someone else):
    it leaves the profile, and the record's history says who, when and why (the patient
    reads it there). Raises ``AlreadyCorrected`` when it was withdrawn already (by a
    colleague, or a second tab)."""
    model = type(entry)
    with transaction.atomic():
        locked = model.all_entries.select_for_update().select_related("patient").get(pk=entry.pk)
        if not locked.is_correctable:
            raise AlreadyCorrected
        locked.withdrawn_at = timezone.now()
        locked.save(update_fields=["withdrawn_at"])
        RecordEvent.objects.create(
            patient=locked.patient, actor=actor, team=team, kind=RecordEvent.Kind.PROFILE_WITHDRAWN,
            target=locked.describe()[:255], reason=reason.strip(), **{model.__name__.lower(): locked},
        )  # fmt: skip
    return locked


@transaction.atomic
def comment_profile_entry(*, author, entry, body: str) -> ProfileComment:
    """The patient's comment on an entry a professional wrote; the entry stays as it is.
    The members of the team that wrote it are told (content-free email, once) and read
    the comment beside the entry on the patient's page."""
    from messaging import services as messaging

    field = type(entry).__name__.lower()
    comment = ProfileComment.objects.create(patient=entry.patient, author=author, body=body.strip(), **{field: entry})
    if entry.team_id is not None:
        messaging.notify_team(team=entry.team, patient=entry.patient, actor=author, profile_comment=comment)
    return comment
