"""Checking the audit chains (the access log, the support trail) and alerting on a break;
the patient's reports of an access they do not recognise."""

import datetime
import logging
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.audit.chain import GENESIS
from portal.audit.models import AccessReport, ChainAlert

logger = logging.getLogger(__name__)

CHAINED_MODELS = ("audit.AccessLog", "support.SupportAction")
RECENT = datetime.timedelta(days=2)
RELAY_DELAY = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class Break:
    """The first broken link of a chain: the row where the chain stops holding."""

    table: str
    row_id: int
    problem: str

    def __str__(self):
        return f"{self.table} row {self.row_id}: {self.problem}"


def _short(value: str) -> str:
    return (value or "(empty)")[:12]


def _check_row(row, expected_prev: str, prev_id) -> str | None:
    if row.prev_hash != expected_prev:
        if prev_id is None:
            return f"links to {_short(row.prev_hash)}… but is the first row of its chain: rows before it were removed"
        return (
            f"links to {_short(row.prev_hash)}… but the row before it in its chain (id {prev_id}) "
            f"has hash {_short(expected_prev)}…: a row between them was removed or inserted"
        )
    computed = row.compute_hash()
    if row.hash != computed:
        return (
            f"stored hash {_short(row.hash)}… but its content hashes to {_short(computed)}…: "
            "the row was changed after it was written"
        )
    return None


def verify_chain(model) -> list[Break]:
    """Walk every chain of ``model``'s table from its first row; the first broken link
    of each broken chain. Streams the table in chain order (memory stays flat)."""
    table, breaks = model._meta.db_table, []
    key, expected, prev_id, broken = object(), GENESIS, None, False
    for row in model._base_manager.order_by(*model.CHAIN_ORDER).iterator(chunk_size=2000):
        if row.chain_key() != key:
            key, expected, prev_id, broken = row.chain_key(), GENESIS, None, False
        if broken:
            continue
        problem = _check_row(row, expected, prev_id)
        if problem:
            breaks.append(Break(table, row.pk, problem))
            broken = True
        expected, prev_id = row.hash, row.pk
    return breaks


def verify_recent_chain(model, *, since: datetime.datetime) -> list[Break]:
    """Check the rows written since ``since`` and the link from each chain's first
    recent row to the row before it: work grows with the recent rows, not with history."""
    table, rows = model._meta.db_table, model._base_manager
    first = rows.filter(at__gte=since).order_by("pk").values_list("pk", flat=True).first()
    if first is None:
        return []
    recent = list(rows.filter(pk__gte=first).order_by(*model.CHAIN_ORDER))
    starts = {}
    for row in recent:
        starts.setdefault(row.chain_key(), row)
    # The row before the window in each chain, by the chain and the id (one index probe each).
    previous_ids = model.rows_before(list(starts), before=first, using=rows.db)
    before = rows.in_bulk([pk for pk in previous_ids.values() if pk is not None])
    breaks, broken = [], set()
    for key, start in starts.items():
        previous = before.get(previous_ids[key])
        if previous is None:
            if start.prev_hash != GENESIS:
                breaks.append(
                    Break(table, start.pk, "links to a row that is no longer in its chain: a row was removed")
                )
                broken.add(key)
        elif start.prev_hash != previous.hash:  # a row between them removed, or one put in
            breaks.append(Break(table, start.pk, _check_row(start, previous.hash, previous.pk)))
            broken.add(key)
        elif problem := _check_row(previous, previous.prev_hash, None):
            breaks.append(Break(table, previous.pk, problem))
            broken.add(key)
    expected = {key: start.prev_hash for key, start in starts.items()}
    prev_ids = {}
    for row in recent:
        key = row.chain_key()
        if key in broken:
            continue
        if problem := _check_row(row, expected[key], prev_ids.get(key, -1)):
            breaks.append(Break(table, row.pk, problem))
            broken.add(key)
        expected[key], prev_ids[key] = row.hash, row.pk
    return breaks


def chained_models():
    return [apps.get_model(label) for label in CHAINED_MODELS]


def check_recent_audit_chains(*, now: datetime.datetime | None = None) -> list[Break]:
    """The periodic check: the last two days of every audit chain. Each break is
    mailed once to the operator (settings.AUDIT_ALERT_EMAIL); a run that finds the
    same break again sends nothing. Content-free: a table and a row number."""
    since = (now or timezone.now()) - RECENT
    breaks = [b for model in chained_models() for b in verify_recent_chain(model, since=since)]
    for found in breaks:
        logger.error("audit chain broken: %s row %s", found.table, found.row_id)
        _alert_once(found)
    return breaks


def _alert_once(found: Break) -> None:
    address = settings.AUDIT_ALERT_EMAIL
    if not address:
        return  # nobody to tell: logged above, and mailed by a later run once set
    try:
        with transaction.atomic():
            _, created = ChainAlert.objects.get_or_create(
                table=found.table, row_id=found.row_id, defaults={"problem": found.problem[:255]}
            )
            if created:  # a failed send rolls the alert back: the next run sends it
                send_mail(
                    "Carnet: audit log integrity alert",
                    f"The audit chain of table {found.table} is broken at row {found.row_id}.\n"
                    "Run `manage.py verify_audit_chain` on the server for details.\n",
                    None,
                    [address],
                )
    except IntegrityError:  # a concurrent run recorded it first
        pass


# --- "I don't recognise this": a patient reports a line of their access history --------


def report_access(*, patient, access_log, comment: str = "") -> tuple[AccessReport, bool]:
    """Open a support case about one line of ``patient``'s access history (a row of
    their own log). Reporting the same line again changes nothing (one case per row):
    returns (the case, whether it was opened now). The data-protection contact gets a
    content-free copy once the case is saved."""
    if access_log.patient_id != patient.pk:
        raise ValueError("a patient reports their own access history only")
    try:
        with transaction.atomic():
            report = AccessReport.objects.create(access_log=access_log, patient=patient, comment=comment.strip()[:200])
    except IntegrityError:  # a double submit, or a second tab
        return AccessReport.objects.get(access_log=access_log), False
    transaction.on_commit(lambda: _enqueue_dpo_copy(report.pk))
    return report, True


def _enqueue_dpo_copy(report_id: int) -> None:
    from portal import jobs
    from portal.audit.tasks import copy_report_to_dpo

    try:
        jobs.send(copy_report_to_dpo, report_id)
    except Exception:  # broker down: the periodic relay sends it
        logger.warning("report %s: copy to the data-protection contact left to the relay", report_id)


def copy_report_to_dpo(*, report_id: int) -> bool:
    """Tell the data-protection contact (settings.DPO_EMAIL) that a case was opened:
    its number only, no name, no content. Once per case, even when run twice."""
    if not settings.DPO_EMAIL:
        return False
    with transaction.atomic():
        report = AccessReport.objects.select_for_update().filter(pk=report_id, dpo_notified_at__isnull=True).first()
        if report is None:
            return False
        with translation.override(settings.LANGUAGE_CODE):
            send_mail(
                _("Carnet: an access was reported by a patient"),
                _("A patient has flagged an access to their record: case #%(number)s. Open the support console.")
                % {"number": report.pk},
                None,
                [settings.DPO_EMAIL],
            )
        report.dpo_notified_at = timezone.now()
        report.save(update_fields=["dpo_notified_at"])
    return True


def relay_report_copies() -> None:
    """Periodic: copies to the data-protection contact that could not be handed to Celery."""
    waiting = AccessReport.objects.filter(dpo_notified_at__isnull=True, created_at__lt=timezone.now() - RELAY_DELAY)
    for report_id in waiting.order_by("pk").values_list("pk", flat=True)[:100]:
        copy_report_to_dpo(report_id=report_id)
