import datetime
import sys
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Exists, OuterRef
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from agenda.models import Appointment
from messaging.models import Conversation
from portal import access
from portal.accounts.middleware import TERMS_SESSION_KEY
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.celery import app as celery_app
from portal.idempotency import idempotent
from portal.models import TermsAcceptance
from portal.support import services as support
from portal.support.forms import ContactForm
from records import services as records
from records.models import Document, Export, LabReport, News, Prescription
from reminders import services as reminders

HOME_BY_ROLE = {
    User.Role.PATIENT: "patient_home",
    User.Role.CLINICIAN: "careteams:patient_list",
    User.Role.SUPPORT: "support:home",
}


TRUST_PAGE_TITLES = {
    "help": _("Help"),
    "privacy": _("Privacy"),
    "terms": _("Terms of use"),
    "accessibility": _("Accessibility"),
}


def _trust_body(page):
    """Long prose (and legal text) is written once per language."""
    return f"portal/trust/{page}.{'en' if get_language() == 'en' else 'fr'}.html"


@require_GET
def trust_page(request, page):
    """Help, privacy notice, terms of use, accessibility statement: public, linked from
    every page's footer."""
    context = {"title": TRUST_PAGE_TITLES[page], "body": _trust_body(page), "operator": settings.OPERATOR}
    return render(request, "portal/trust/page.html", context)


@require_http_methods(["GET", "POST"])
@idempotent
def contact(request):
    """Contact support about an account, signed in or not (the sign-in and the
    deactivated-account pages send people here): a case in the support console,
    answered by email. A double submit makes one case; one address sends a few an hour."""
    user = request.user if request.user.is_authenticated else None
    initial = {"request_key": uuid.uuid4()}
    if user is not None:
        initial |= {"name": user.get_full_name(), "email": user.email}
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            support.submit_request(
                fields={name: form.cleaned_data[name] for name in ("name", "email", "topic", "message")},
                user=user,
                address=request.META.get("REMOTE_ADDR", ""),
                language=get_language() or settings.LANGUAGE_CODE,
                request_key=form.cleaned_data["request_key"],
            )
        except support.TooManyRequests as limit:
            minutes = max(1, limit.retry_after // 60)
            form.add_error(
                None,
                ngettext(
                    "Several messages were sent from here lately. Try again in %(minutes)s minute, "
                    "or write to %(email)s.",
                    "Several messages were sent from here lately. Try again in %(minutes)s minutes, "
                    "or write to %(email)s.",
                    minutes,
                )
                % {"minutes": minutes, "email": settings.OPERATOR["support_email"]},
            )
        else:
            return redirect("contact_sent")
    return render(request, "portal/trust/contact.html", {"form": form, "operator": settings.OPERATOR})


@require_GET
def contact_sent(request):
    return render(request, "portal/trust/contact_sent.html", {"operator": settings.OPERATOR})


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def terms_accept(request):
    """The terms of use in force, to accept once per version (recorded; a double
    submit records once), then on to where the person was going."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = resolve_url("home")
    if request.method == "POST":
        TermsAcceptance.objects.get_or_create(user=request.user, version=settings.TERMS_VERSION)
        request.session[TERMS_SESSION_KEY] = settings.TERMS_VERSION
        return redirect(next_url)
    context = {"body": _trust_body("terms"), "next": next_url, "operator": settings.OPERATOR}
    return render(request, "portal/trust/accept_terms.html", context)


@login_required
@require_safe
def home(request):
    return redirect(HOME_BY_ROLE[request.user.role])


FEED_SIZE = 10


@dataclass
class FeedLine:
    """One line of the patient's dashboard feed: a link to what arrived."""

    at: datetime.datetime
    label: str
    title: str
    url: str
    source: str = ""
    new: bool = False
    abnormal: bool = False
    unread: int = 0


def _news_line(news) -> FeedLine:
    document, report, prescription, appointment = news.document, news.lab_report, news.prescription, news.appointment
    if document is not None:
        title, url, source = document.title, reverse("records:document", args=[document.pk]), document.author_team
    elif report is not None:
        title, url, source = report.title, f"{reverse('records:results')}#report-{report.pk}", report.team
    elif appointment is not None:
        title = date_format(appointment.local_start, "DATETIME_FORMAT")
        url, source = f"{reverse('agenda:mine')}#appointment-{appointment.pk}", appointment.team
    else:
        title, source = prescription.medication, prescription.team
        url = f"{reverse('records:prescriptions')}#prescription-{prescription.pk}"
    return FeedLine(
        at=news.created_at, label=news.get_kind_display(), title=title, url=url,
        source=source.name if source else "", new=news.seen_at is None, abnormal=news.abnormal,
    )  # fmt: skip


def dashboard_feed(user, record) -> list[FeedLine]:
    """What arrived lately in the record one is in, newest first: what care teams
    published (documents, results with out-of-range values flagged, prescriptions,
    corrections, withdrawals, appointments) and conversations with unread messages;
    for a representative, only the parts they act on and never a confidential item.
    Bounded: at most ``FEED_SIZE`` rows of each source, in one query each, whatever the
    size of the record."""
    patient = record.patient
    unread = ()
    if record.may(access.MESSAGES):
        unread = (
            access.rows_in_record(record, Conversation)
            .select_related("team")
            .with_unread_for(user)
            .filter(unread__gt=0)
            .order_by("-last_message_at", "-pk")[:FEED_SIZE]
        )
    news = News.objects.filter(patient=patient) if record.is_own else access.news_for_representative(user)
    lines = [_news_line(item) for item in records.recent_news(news=news.filter(patient=patient), limit=FEED_SIZE)]
    lines += [
        FeedLine(
            at=conversation.last_message_at,
            label=_("New message"),
            title=conversation.subject,
            url=reverse("messaging:conversation", args=[conversation.pk]),
            source=conversation.team.name,
            new=True,
            unread=conversation.unread,
        )
        for conversation in unread
    ]
    return sorted(lines, key=lambda line: line.at, reverse=True)[:FEED_SIZE]


def waiting_for(user, record) -> dict:
    """What waits for the reader to act in the record they are in: renewals due (without
    an open request), exports ready to download; each only in a part they act on."""
    patient, today = record.patient, timezone.localdate()
    renewals = exports = ()
    if record.may(access.PRESCRIPTIONS):
        seen = Conversation.objects.none()
        if record.may(access.MESSAGES):
            seen = access.rows_in_record(record, Conversation)
        requested = seen.filter(
            prescription=OuterRef("pk"), kind=Conversation.Kind.RENEWAL, status=Conversation.Status.OPEN
        )
        prescriptions = access.rows_in_record(record, Prescription)
        renewals = records.renewals_due(prescriptions=prescriptions, today=today).exclude(Exists(requested))
    if record.may(access.MANAGE):
        exports = access.exports_for(user).filter(
            patient=patient, state=Export.State.READY, expires_at__gt=timezone.now()
        )
        exports = exports.order_by("-finished_at", "-pk")
    return {"renewals": list(renewals[:FEED_SIZE]), "exports": list(exports[:3])}


@access.role_required(User.Role.PATIENT)
@require_safe
def patient_home(request):
    """The dashboard of the record one is in: its own, or one they act for, each part
    shown only when they may act on it (and confidential items never to a representative)."""
    record = access.current_record(request)
    patient, user, today = record.patient, request.user, timezone.localdate()
    conversations = documents = prescriptions = reports = ()
    if record.may(access.MESSAGES):
        conversations = (
            access.rows_in_record(record, Conversation)
            .select_related("team")
            .with_unread_for(user)
            .order_by("-last_message_at", "-pk")[:3]
        )
    if record.may(access.DOCUMENTS):
        documents = list(access.rows_in_record(record, Document).current()[:3])
    if record.may(access.PRESCRIPTIONS):
        prescriptions = list(
            access.rows_in_record(record, Prescription)
            .filter(start_date__lte=today)
            .exclude(end_date__lt=today)
            .current(today)[:3]
        )
    if record.may(access.RESULTS):
        reports = list(access.rows_in_record(record, LabReport)[:3])
    appointments = ()
    if record.may(access.MANAGE):
        appointments = list(
            access.rows_in_record(record, Appointment)
            .scheduled()
            .upcoming()
            .select_related("team")
            .order_by("starts_at", "pk")[:3]
        )
    new = records.unseen_news_ids_of(
        patient=patient, document_id=documents, prescription_id=prescriptions, lab_report_id=reports
    )
    context = {
        "reminders": reminders.shown_reminders(user=request.user, patient=patient) if record.is_own else [],
        "new_documents": new["document_id"],
        "new_prescriptions": new["prescription_id"],
        "new_reports": new["lab_report_id"],
        "patient": patient,
        "record": record,
        "conversations": conversations,
        "documents": documents,
        "prescriptions": prescriptions,
        "reports": reports,
        "appointments": appointments,
        "feed": dashboard_feed(request.user, record),
        **waiting_for(request.user, record),
    }
    return access.render_record(
        request, "portal/patient_home.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache():
    if hasattr(cache, "check_primary"):  # Redis itself, not the database standing in for it
        cache.check_primary()
    nonce = uuid.uuid4().hex
    cache.set("healthz", nonce, 10)
    if cache.get("healthz") != nonce:
        raise RuntimeError("cache did not return what was written")


def _check_broker():
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


@require_GET
@never_cache
@transaction.non_atomic_requests
def healthz(request):
    """Reachability of what a request needs, as JSON; 503 when any is down."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "down"; only its type is reported
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = "ok"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": results}, status=200 if healthy else 503)


def server_error(request):
    """The 500 page; a 503 page saying nothing was saved when the database could not
    be reached or dropped the connection (the request's transaction was rolled back).
    Marks the request so that ``RetryReadOnLostDatabaseMiddleware`` may run a read again."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        request.database_lost = True
        return HttpResponse(loader.get_template("503.html").render(), status=503, headers={"Retry-After": "5"})
    return defaults.server_error(request)
