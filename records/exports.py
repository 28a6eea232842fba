"""Export workflows: request, run (once), notify (once), purge.

Callers have already checked access through ``portal.access``. Tasks call these
with ids only; the row's state machine and a lock make every step safe to run twice.
"""

import contextlib
import datetime
import json
import logging
import threading
import uuid

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal import access
from portal.audit.models import AccessLog
from records import export_builders, files
from records.models import Export

logger = logging.getLogger(__name__)

KEEP_FOR = datetime.timedelta(days=7)
# Runs an export may start; when all of them died, it fails (the patient may ask again).
MAX_ATTEMPTS = 3


def lease() -> datetime.timedelta:
    """A running export holds a short lease, renewed while its run is alive (at each
    progress step, and every third of a lease by ``_keeping_lease``); a run that died
    (worker killed) lets it expire, and the periodic sweep hands it to a live worker."""
    return datetime.timedelta(seconds=settings.EXPORT_LEASE_SECONDS)


@contextlib.contextmanager
def _keeping_lease(export_id: int, token: str):
    """Renew the run's lease from a thread while the block runs, however long one
    build step takes: the lease can then be short, so a dead run is noticed quickly."""
    stop = threading.Event()

    def renew():
        try:
            while not stop.wait(lease().total_seconds() / 3):
                Export.objects.filter(pk=export_id, run_token=token, state=Export.State.RUNNING).update(
                    lease_until=timezone.now() + lease()
                )
        except Exception as error:  # the progress steps renew it too; the run goes on
            logger.warning("export %s: lease not renewed (%s)", export_id, type(error).__name__)
        finally:
            connection.close()

    thread = threading.Thread(target=renew, name=f"export-{export_id}-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


class ExportBusy(Exception):
    """Another run holds the export's lease; try again once it has expired."""

    def __init__(self, retry_in: float):
        super().__init__(f"export busy for {retry_in:.0f} s")
        self.retry_in = retry_in


def fingerprint(kind: str, options: dict) -> str:
    return f"{kind}:{json.dumps(options, sort_keys=True, separators=(',', ':'))}"[:200]


def request_export(
    *, user, patient, kind: str, options: dict, language: str = settings.LANGUAGE_CODE
) -> tuple[Export, bool]:
    """Queue an export for ``patient``, or return the identical one already
    queued or running. Returns (export, created). The task is enqueued after commit.
    The file and its email are in ``language`` (the page's, when asked from it)."""
    key = fingerprint(kind, options)
    if patient.user_id != user.pk:  # each parent's export is their own (what they may see may differ)
        key = f"{user.pk}:{key}"[:200]
    pending = Export.objects.filter(patient=patient, fingerprint=key, state__in=Export.PENDING_STATES)
    existing = pending.first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            export = Export.objects.create(
                patient=patient,
                requested_by=user,
                kind=kind,
                options=options,
                fingerprint=key,
                language=language,
            )
    except IntegrityError:  # an identical request won the race
        return pending.get(), False
    AccessLog.objects.create(
        patient=patient,
        actor=user,
        actor_role=access.actor_role(user, patient),
        action=AccessLog.Action.EXPORT,
        target=str(export.get_kind_display()),
    )
    transaction.on_commit(lambda: enqueue_export(export.pk))
    return export, True


def enqueue_export(export_id: int) -> None:
    from portal import jobs
    from records.export_tasks import run_export

    try:
        jobs.send(run_export, export_id)
    except Exception:  # broker down: the periodic sweep enqueues it again
        logger.warning("broker unreachable; export %s left for the sweep", export_id)


def _claim(export_id: int, token: str) -> Export | None:
    now = timezone.now()
    with transaction.atomic():
        export = Export.objects.select_for_update().select_related("patient", "requested_by")
        export = export.filter(pk=export_id).first()
        if export is None or not export.is_pending:
            return None
        if export.state == Export.State.RUNNING and export.lease_until and export.lease_until > now:
            raise ExportBusy((export.lease_until - now).total_seconds() + 1)
        if export.attempts >= MAX_ATTEMPTS:  # each run died (killed, out of memory): stop trying
            export.state, export.failure, export.finished_at, export.lease_until = (
                Export.State.FAILED, Export.Failure.ERROR, now, None
            )  # fmt: skip
            export.save(update_fields=["state", "failure", "finished_at", "lease_until"])
            logger.error("export %s failed: its %d runs died", export_id, export.attempts)
            transaction.on_commit(lambda: enqueue_ready_email(export_id))  # told it failed
            return None
        export.state = Export.State.RUNNING
        export.run_token = token
        export.lease_until = now + lease()
        export.started_at = now
        export.progress = 0
        export.attempts += 1
        export.save(update_fields=["state", "run_token", "lease_until", "started_at", "progress", "attempts"])
        return export


def _set_progress(export_id: int, token: str, percent: int) -> None:
    Export.objects.filter(pk=export_id, run_token=token, state=Export.State.RUNNING).update(
        progress=percent, lease_until=timezone.now() + lease()
    )


def _build(export: Export, progress) -> bytes:
    user, patient, options = export.requested_by, export.patient, export.options
    if not access.patients_acted_for(user, access.MANAGE).filter(pk=patient.pk).exists():
        raise export_builders.Gone  # a representation ended (or expired) since the request
    with translation.override(export.language):
        if export.kind == Export.Kind.SUMMARY:
            return export_builders.build_summary(
                user=user, patient=patient, sections=options.get("sections", []), progress=progress
            )
        if export.kind == Export.Kind.LAB_RESULTS:
            start, end = options.get("from"), options.get("to")
            return export_builders.build_lab_results(
                user=user,
                patient=patient,
                start=start and datetime.date.fromisoformat(start),
                end=end and datetime.date.fromisoformat(end),
                progress=progress,
            )
        if export.kind == Export.Kind.CONVERSATION:
            return export_builders.build_conversation(
                user=user, patient=patient, conversation_id=options.get("conversation"), progress=progress
            )
        return export_builders.build_archive(user=user, patient=patient, progress=progress)


def _finish(export_id: int, token: str, **fields) -> bool:
    """Apply the final transition if this run still owns the row."""
    with transaction.atomic():
        export = Export.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.state != Export.State.RUNNING or export.run_token != token:
            return False
        for name, value in fields.items():
            setattr(export, name, value)
        export.finished_at = timezone.now()
        export.lease_until = None
        export.save(update_fields=[*fields, "finished_at", "lease_until"])
        if export.state == Export.State.READY or export.failure in RETRYABLE_FAILURES:  # the email promised
            transaction.on_commit(lambda: enqueue_ready_email(export_id))
        return True


def _fail(export_id: int, token: str, reason: str) -> None:
    _finish(export_id, token, state=Export.State.FAILED, failure=reason)


def run_export(*, export_id: int, keep_lease: bool = False) -> None:
    """Build, seal and store the export's file, then mark it ready. A finished
    export is left alone; a duplicate delivery while another run is alive raises
    ``ExportBusy``; a file built by a run that lost the row is thrown away.
    ``keep_lease``: renew the lease from a thread (a worker's run; see ``lease``)."""
    token = uuid.uuid4().hex
    export = _claim(export_id, token)
    if export is None:
        return
    try:
        with _keeping_lease(export_id, token) if keep_lease else contextlib.nullcontext():
            data = _build(export, lambda percent: _set_progress(export_id, token, percent))
    except SoftTimeLimitExceeded:
        _fail(export_id, token, Export.Failure.TIMEOUT)
        return
    except export_builders.Gone:
        _fail(export_id, token, Export.Failure.GONE)
        return
    except Exception as error:
        # The error's type only: messages and tracebacks can quote health data.
        logger.error("export %s failed: %s", export_id, type(error).__name__)
        _fail(export_id, token, Export.Failure.ERROR)
        return
    name, sha256, key_id = files.store(data, folder="exports")
    owned = _finish(
        export_id,
        token,
        state=Export.State.READY,
        progress=100,
        file_name=name,
        sha256=sha256,
        key_id=key_id,
        size=len(data),
        expires_at=timezone.now() + KEEP_FOR,
    )
    if not owned:
        files.remove(name)


def enqueue_ready_email(export_id: int) -> None:
    from records.export_tasks import email_export_ready

    try:
        email_export_ready.delay(export_id)
    except Exception:
        logger.warning("broker unreachable; ready email of export %s left for the sweep", export_id)


# Failures that asking again may mend (an error, a run too long), each told by email as
# "ready" would have been; an item gone from the record is said on the page alone.
RETRYABLE_FAILURES = (Export.Failure.ERROR, Export.Failure.TIMEOUT)


def email_export_ready(*, export_id: int) -> bool:
    """Tell the patient their export is ready, or that it could not be made (the page
    promised an email), once. No health content."""
    with transaction.atomic():
        export = Export.objects.select_for_update().select_related("requested_by").filter(pk=export_id).first()
        if export is None or export.emailed_at is not None:
            return False
        if export.state != Export.State.READY and export.failure not in RETRYABLE_FAILURES:
            return False
        url = f"{settings.SITE_URL}/my/exports/"
        with translation.override(export.language):
            if export.state == Export.State.READY:
                subject = _("Your Carnet export is ready")
                body = _(
                    "The export you requested is ready to download from your health space:\n{url}\n\n"
                    "It will be deleted after 7 days."
                ).format(url=url)
            else:
                subject = _("Your Carnet export could not be made")
                body = _(
                    "The export you requested could not be made. Nothing of your record was lost: ask for it "
                    "again from your health space:\n{url}\n\nIf it fails again, write to us from the help page."
                ).format(url=url)
        send_mail(subject, body, None, [export.requested_by.email])
        export.emailed_at = timezone.now()
        export.save(update_fields=["emailed_at"])
        return True


def sweep_exports(*, stale_after: datetime.timedelta | None = None) -> dict:
    """Periodic (every ``EXPORT_SWEEP_SECONDS``): delete exports older than 7 days with
    their files; enqueue exports left queued longer than a lease (broker down) or whose
    run's lease has expired (worker died); send missed emails."""
    now = timezone.now()
    stale_after = lease() if stale_after is None else stale_after
    expired = Export.objects.filter(
        created_at__lt=now - KEEP_FOR, state__in=[Export.State.READY, Export.State.FAILED]
    ) | Export.objects.filter(expires_at__lt=now)
    purged = 0
    for export in expired.distinct():
        name = export.file_name
        export.delete()
        transaction.on_commit(lambda name=name: files.remove(name))
        purged += 1
    stale = Export.objects.filter(state=Export.State.QUEUED, created_at__lt=now - stale_after) | Export.objects.filter(
        state=Export.State.RUNNING, lease_until__lt=now
    )
    stale_ids = list(stale.values_list("pk", flat=True))
    for export_id in stale_ids:
        transaction.on_commit(lambda export_id=export_id: enqueue_export(export_id))
    # Emails missed (the broker was down): that it is ready; that it failed, lately only.
    unsent = Export.objects.filter(emailed_at__isnull=True, finished_at__lt=now - stale_after)
    unsent = list(
        (
            unsent.filter(state=Export.State.READY)
            | unsent.filter(failure__in=RETRYABLE_FAILURES, finished_at__gt=now - datetime.timedelta(days=1))
        ).values_list("pk", flat=True)
    )
    for export_id in unsent:
        transaction.on_commit(lambda export_id=export_id: enqueue_ready_email(export_id))
    return {"purged": purged, "enqueued": len(stale_ids), "emails": len(unsent)}


def read_export(*, export: Export) -> bytes:
    """The export's file, opened and verified (raises ``files.IntegrityError``)."""
    return files.load(export.file_name, export.sha256)
