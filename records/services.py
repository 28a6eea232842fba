"""Records workflows. Callers have already checked access through ``portal.access``."""

import csv
import datetime
import io
import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.careteams.models import CareLink, ClinicianBlock
from records import files
from records.models import Document, LabReport, Observation, Prescription

logger = logging.getLogger(__name__)


def upload_document(*, author, patient, upload, title, category, care_date, team=None) -> Document:
    """Check, seal and store an uploaded file, then record it. Nothing is left
    behind when anything fails: no row without its file, no file without its row."""
    data, content_type = files.read_upload(upload)
    name, sha256, key_id = files.store(data)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                patient=patient,
                title=title,
                category=category,
                care_date=care_date,
                author=author,
                author_team=team,
                content_type=content_type,
                size=len(data),
                sha256=sha256,
                key_id=key_id,
                file_name=name,
            )
            transaction.on_commit(lambda: _enqueue_processing(document.pk))
    except Exception:
        files.remove(name)
        raise
    return document


def _enqueue_processing(document_id):
    from records.tasks import process_document

    try:
        process_document.delay(document_id)
    except Exception:  # broker down: the periodic sweep picks it up
        logger.warning("broker unreachable; document %s left for the processing sweep", document_id)


def read_document(*, document: Document) -> bytes:
    """The original bytes, verified against the hash taken at upload.
    Raises ``files.IntegrityError`` (and logs it, without health data) when altered."""
    try:
        return files.load(document.file_name, document.sha256)
    except files.IntegrityError as error:
        logger.error("document %s failed its integrity check: %s", document.pk, error)
        raise


def read_preview(*, document: Document) -> bytes:
    return files.load(document.preview_name, document.preview_sha256)


def delete_document(*, document: Document) -> None:
    """Delete a document the patient uploaded, and its files once committed."""
    names = [document.file_name, document.preview_name]
    document.delete()
    transaction.on_commit(lambda: [files.remove(name) for name in names])


def set_document_hidden(*, document: Document, hidden: bool) -> None:
    if document.hidden != hidden:
        document.hidden = hidden
        document.save(update_fields=["hidden"])


def render_pdf_preview(data: bytes) -> bytes:
    """A PNG of a PDF's first page, about 600 px wide."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        page = pdf[0]
        scale = 600 / max(page.get_width(), 1)
        image = page.render(scale=scale).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()
    finally:
        pdf.close()


def process_document(*, document_id: int) -> None:
    """After upload: make a first-page preview of a PDF and mark the document
    ready. Idempotent: a ready document is left as it is."""
    document = Document.objects.filter(pk=document_id).first()
    if document is None or document.status == Document.Status.READY:
        return
    fields = ["status"]
    if document.content_type == "application/pdf":
        try:
            preview = render_pdf_preview(read_document(document=document))
        except files.IntegrityError:
            return
        except Exception:  # a PDF pdfium cannot draw still gets served, without preview
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
    """Periodic: enqueue documents still processing (the broker was down at upload)."""
    cutoff = timezone.now() - datetime.timedelta(minutes=older_than_minutes)
    ids = list(
        Document.objects.filter(status=Document.Status.PROCESSING, created_at__lte=cutoff).values_list("pk", flat=True)
    )
    for document_id in ids:
        _enqueue_processing(document_id)
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
    body = _("Please renew my prescription: %(medication)s, %(dosage)s, %(frequency)s.") % {
        "medication": prescription.medication,
        "dosage": prescription.dosage,
        "frequency": prescription.frequency,
    }
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


def add_lab_report(*, author, team, patient, title, collected_on, observations) -> LabReport:
    """Record a lab report and its observations, all or nothing."""
    with transaction.atomic():
        report = LabReport.objects.create(
            patient=patient, title=title, collected_on=collected_on, author=author, team=team
        )
        Observation.objects.bulk_create(
            [Observation(report=report, patient=patient, **observation) for observation in observations]
        )
    return report


CSV_COLUMNS = ["loinc", "name", "value", "unit", "low", "high"]


def parse_observations_csv(data: bytes) -> list[dict]:
    """Observations from a CSV file (columns: loinc, name, value, unit, low, high;
    comma or semicolon separated, decimal point or comma). Raises ValidationError
    naming every bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(_("The CSV file must be UTF-8 text."), code="encoding") from None
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text.strip() else ",", delimiters=",;")
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    if not rows or set(CSV_COLUMNS) - set(rows[0].keys()):
        raise ValidationError(
            _("The CSV file needs these columns: %(columns)s.") % {"columns": ", ".join(CSV_COLUMNS)}, code="columns"
        )
    observations, errors = [], []
    for line, row in enumerate(rows, start=2):
        try:
            observation = {
                "loinc": row["loinc"].strip()[:16],
                "name": row["name"].strip()[:120],
                "value": _decimal(row["value"]),
                "unit": row["unit"].strip()[:32],
                "low": _decimal(row["low"], required=False),
                "high": _decimal(row["high"], required=False),
            }
            if not observation["loinc"] or not observation["name"]:
                raise ValueError
        except (ValueError, ArithmeticError, AttributeError):
            errors.append(_("Line %(line)d is not valid.") % {"line": line})
        else:
            try:
                Observation(**observation).clean()  # the model's rules (a reversed range)
            except ValidationError:
                errors.append(_("Line %(line)d: the upper limit is below the lower limit.") % {"line": line})
            else:
                observations.append(observation)
    if errors:
        raise ValidationError(errors, code="lines")
    return observations


def _decimal(raw, required=True):
    raw = (raw or "").strip().replace(",", ".")
    if not raw:
        if required:
            raise ValueError("missing")
        return None
    value = Decimal(raw)
    if not value.is_finite():
        raise ValueError("not finite")
    return value
