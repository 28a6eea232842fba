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
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.utils.timezone import template_localtime
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from agenda.models import Appointment
from messaging.models import Conversation, ReadState
from portal import access
from portal.accounts.middleware import TERMS_SESSION_KEY
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.celery import app as celery_app
from portal.idempotency import idempotent
from portal.models import TermsAcceptance
from portal.prepared import prepared
from portal.redirects import safe_next
from portal.rows import date_formatter, labels_of, url_by_pk
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
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next") or "")
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
CARD_SIZE = 3  # the latest items of each card


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
    at_iso: str = ""  # ``at`` as ``|date:"c"`` shows it
    day: str = ""  # ``at`` as ``|date:"SHORT_DATE_FORMAT"`` shows it


def _news_lines(news) -> list[FeedLine]:
    """The feed's lines of ``news`` (rows of ``records.recent_news``), each route reversed once."""
    if not news:
        return []
    labels, when, day = (
        labels_of(News.Kind.choices),
        date_formatter("DATETIME_FORMAT"),
        date_formatter("SHORT_DATE_FORMAT"),
    )
    document_url, results = url_by_pk("records:document"), reverse("records:results")
    agenda, prescriptions = reverse("agenda:mine"), reverse("records:prescriptions")
    lines = []
    for row in news:
        if row["document_id"] is not None:
            url, title, source = (
                document_url(row["document_id"]),
                row["document__title"],
                row["document__author_team__name"],
            )
        elif row["lab_report_id"] is not None:
            url = f"{results}#report-{row['lab_report_id']}"
            # Reports are often named alike (« Bilan sanguin »): their sampling day tells them apart.
            title = _("%(title)s of %(day)s") % {
                "title": row["lab_report__title"],
                "day": day(row["lab_report__collected_on"]),
            }
            source = row["lab_report__team__name"]
        elif row["appointment_id"] is not None:
            url = f"{agenda}#appointment-{row['appointment_id']}"
            title, source = when(row["appointment__starts_at"]), row["appointment__team__name"]
        else:
            url = f"{prescriptions}#prescription-{row['prescription_id']}"
            title, source = row["prescription__medication"], row["prescription__team__name"]
        lines.append(FeedLine(
            at=row["created_at"], label=labels.get(row["kind"], row["kind"]), title=title, url=url,
            source=source or "", new=row["seen_at"] is None, abnormal=row["abnormal"],
        ))  # fmt: skip
    return lines


def dashboard_feed(user, record, unread) -> list[FeedLine]:
    """What arrived lately in the record one is in, newest first: what care teams
    published (documents, results with out-of-range values flagged, prescriptions,
    corrections, withdrawals, appointments) and ``unread``, the conversations with
    unread messages (from ``_conversations``); for a representative, only the parts they
    act on and never a confidential item. Bounded: at most ``FEED_SIZE`` rows of each
    source, in one query each, whatever the size of the record."""
    patient = record.patient
    if record.is_own:
        lines = _news_lines(_own_recent_news(patient.pk))
    else:
        news = access.news_for_representative(user).filter(patient=patient)
        lines = _news_lines(records.recent_news(news=news, limit=FEED_SIZE))
    if unread:
        url, label = url_by_pk("messaging:conversation"), str(_("New message"))
        for row in unread:
            lines.append(FeedLine(
                at=row["last_message_at"], label=label, title=row["subject"], url=url(row["pk"]),
                source=row["team__name"], new=True, unread=row["unread"],
            ))  # fmt: skip
    lines = sorted(lines, key=lambda line: line.at, reverse=True)[:FEED_SIZE]
    if lines:
        day = date_formatter("SHORT_DATE_FORMAT")
        for line in lines:
            line.at_iso, line.day = template_localtime(line.at).isoformat(), day(line.at)
    return lines


# What the messages card and the feed show of a conversation.
CONVERSATION_FIELDS = ("pk", "subject", "last_message_at", "unread", "team__name")
# What the prescriptions and renewals cards show of a prescription.
PRESCRIPTION_FIELDS = ("pk", "medication", "dosage", "start_date", "end_date", "team__name")

# The dashboard's queries, prepared (portal.prepared): a page that every patient opens
# first, whose cost was mostly building these. ``rows``: access.rows_shape's, for the
# record one is in.


@prepared
def _latest_conversations(user_id, patient_id, *, rows):
    conversations = access.rows_of_shape(patient_id, rows).with_unread_for(user_id)
    return conversations.values_list(*CONVERSATION_FIELDS).order_by("-last_message_at", "-pk")[:CARD_SIZE]


@prepared
def _unread_conversations(user_id, patient_id, *, rows):
    waiting = ReadState.objects.filter(
        user=user_id, unread__gt=0, conversation__in=access.rows_of_shape(patient_id, rows)
    )
    fields = (name if name == "unread" else f"conversation__{name}" for name in CONVERSATION_FIELDS)
    return waiting.values_list(*fields).order_by("-conversation__last_message_at", "-conversation__pk")[:FEED_SIZE]


@prepared
def _own_recent_news(patient_id):
    return records.recent_news_query(news=News.objects.filter(patient=patient_id), limit=FEED_SIZE)


@prepared
def _latest_documents(patient_id, *, rows):
    latest = (
        access.rows_of_shape(patient_id, rows).current().annotate(new=records.has_unseen_news("document", patient_id))
    )
    return latest.values_list("pk", "title", "care_date", "new")[:CARD_SIZE]


@prepared
def _latest_reports(patient_id, *, rows):
    latest = access.rows_of_shape(patient_id, rows).annotate(new=records.has_unseen_news("lab_report", patient_id))
    return latest.values_list("pk", "title", "collected_on", "new")[:CARD_SIZE]


@prepared
def _next_appointments(patient_id, now, *, rows):
    upcoming = access.rows_of_shape(patient_id, rows).scheduled().upcoming(now).order_by("starts_at", "pk")
    return upcoming.values_list("pk", "starts_at", "team__name")[:CARD_SIZE]


def _conversations(user, record) -> tuple[list[dict], list[dict]]:
    """The record's latest ``CARD_SIZE`` conversations (the messages card) and its latest
    ``FEED_SIZE`` with messages ``user`` has not read (the feed), as values with their
    ``unread`` count and ``team__name`` (a conversation may be in both). The unread ones
    are read from the user's markers of something unread (few, indexed), as the unread
    badge reads them, not from every conversation's marker."""
    if not record.may(access.MESSAGES):
        return [], []
    values, rows = (user.pk, record.patient.pk), access.rows_shape(record, Conversation)
    card = [dict(zip(CONVERSATION_FIELDS, row, strict=True)) for row in _latest_conversations(*values, rows=rows)]
    if ReadState.objects.nothing_unread(user):  # as the user's row said: no feed to ask for
        return card, []
    return card, [dict(zip(CONVERSATION_FIELDS, row, strict=True)) for row in _unread_conversations(*values, rows=rows)]


@prepared
def _prescriptions_in_force(patient_id, today, *, rows):
    in_force = access.rows_of_shape(patient_id, rows).in_force(today)
    in_force = in_force.annotate(new=records.has_unseen_news("prescription", patient_id))
    return in_force.values_list(*PRESCRIPTION_FIELDS, "new").order_by("-start_date", "-pk")[:CARD_SIZE]


@prepared
def _renewals_due(patient_id, today, until, *, rows, conversations):
    due = records.renewals_due(prescriptions=access.rows_of_shape(patient_id, rows), today=today, until=until)
    if conversations:  # a renewal already asked for, in a conversation the reader sees
        asked = access.rows_of_shape(patient_id, conversations).filter(
            prescription=OuterRef("pk"), kind=Conversation.Kind.RENEWAL, status=Conversation.Status.OPEN
        )
        due = due.exclude(Exists(asked))
    return due.values_list(*PRESCRIPTION_FIELDS).order_by("end_date", "pk")[:FEED_SIZE]


def _prescriptions(record, today) -> tuple[list[dict], list[dict]]:
    """The record's latest ``CARD_SIZE`` prescriptions in force (the card) and up to
    ``FEED_SIZE`` renewals due without an open request in a conversation the reader sees
    (the "to do" card, soonest first), as values."""
    if not record.may(access.PRESCRIPTIONS):
        return [], []
    patient_id, rows = record.patient.pk, access.rows_shape(record, Prescription)
    conversations = access.rows_shape(record, Conversation) if record.may(access.MESSAGES) else None
    card = [
        dict(zip((*PRESCRIPTION_FIELDS, "new"), row, strict=True))
        for row in _prescriptions_in_force(patient_id, today, rows=rows)
    ]
    until = today + records.RENEWAL_NOTICE
    renewals = _renewals_due(patient_id, today, until, rows=rows, conversations=conversations)
    return card, [dict(zip(PRESCRIPTION_FIELDS, row, strict=True)) for row in renewals]


@prepared
def _ready_exports(patient_id, user_id, now):
    ready = access.exports_of(patient_id, user_id).filter(state=Export.State.READY, expires_at__gt=now)
    return ready.order_by("-finished_at", "-pk").values_list("kind", "expires_at")[:CARD_SIZE]


def _exports(user, record, day) -> list[dict]:
    """The reader's exports of the record ready to download (when they manage it), newest
    first: what each is (``label``) and until when (``until``, written by ``day``)."""
    if not record.may(access.MANAGE):
        return []
    exports = _ready_exports(record.patient.pk, user.pk, timezone.now())
    labels = labels_of(Export.Kind.choices) if exports else {}
    return [{"label": labels.get(kind, kind), "until": day(expires_at)} for kind, expires_at in exports]


def _cards(user, record, today) -> dict:
    """The dashboard's cards of the record one is in, each only in a part the reader acts
    on: the latest items (documents, prescriptions in force, lab results, upcoming
    appointments, conversations) with their "new" markers, and what waits for the reader
    (renewals due, exports ready); ``unread``: the conversations for the feed. Rows of
    plain values, their links and dates written here once per page, not per row by the
    template."""
    conversations, unread = _conversations(user, record)
    prescriptions, renewals = _prescriptions(record, today)
    documents = reports = appointments = ()
    patient_id = record.patient.pk
    if record.may(access.DOCUMENTS):
        documents = _latest_documents(patient_id, rows=access.rows_shape(record, Document))
    if record.may(access.RESULTS):
        reports = _latest_reports(patient_id, rows=access.rows_shape(record, LabReport))
    if record.may(access.MANAGE):
        appointments = _next_appointments(patient_id, timezone.now(), rows=access.rows_shape(record, Appointment))
    day = date_formatter("SHORT_DATE_FORMAT")
    cards = {"conversations": conversations, "unread": unread, "exports": _exports(user, record, day)}
    url = url_by_pk("records:document") if documents else None
    cards["documents"] = [
        {"pk": pk, "url": url(pk), "title": title, "day": day(care_date), "new": new}
        for pk, title, care_date, new in documents
    ]
    url = reverse("records:results") if reports else ""
    cards["reports"] = [
        {"pk": pk, "url": f"{url}#report-{pk}", "title": title, "day": day(collected_on), "new": new}
        for pk, title, collected_on, new in reports
    ]  # fmt: skip
    url = reverse("records:prescriptions") if prescriptions or renewals else ""
    for row in prescriptions:
        row["url"] = f"{url}#prescription-{row['pk']}"
    for row in renewals:
        row["url"], row["ends"] = f"{url}#prescription-{row['pk']}", day(row["end_date"])
    cards["prescriptions"], cards["renewals"] = prescriptions, renewals
    url, when = (reverse("agenda:mine"), date_formatter("l j F, H:i")) if appointments else ("", None)
    cards["appointments"] = [
        {"pk": pk, "url": f"{url}#appointment-{pk}", "when": when(starts_at), "team": team}
        for pk, starts_at, team in appointments
    ]
    url = url_by_pk("messaging:conversation") if conversations else None
    for row in conversations:
        row["url"] = url(row["pk"])
    return cards


@access.role_required(User.Role.PATIENT)
@require_safe
def patient_home(request):
    """The dashboard of the record one is in: its own, or one they act for, each part
    shown only when they may act on it (and confidential items never to a representative)."""
    record = access.current_record(request)
    patient, user = record.patient, request.user
    cards = _cards(user, record, timezone.localdate())
    context = {
        "reminders": reminders.shown_reminders(user=user, patient=patient) if record.is_own else [],
        "patient": patient,
        "record": record,
        "feed": dashboard_feed(user, record, cards.pop("unread")),
        # For the cards' links, written once per language and kind of record ({% rendered_once %}).
        "has_profile": "profile" in record.parts,
        "has_history": "history" in record.parts,
        **cards,
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
    """Reachability of what a request needs, as JSON: 503 when the database is down (no
    page can be served); "degraded", still 200, when only the cache or the broker is (the
    site goes on: rate limits from the database, tasks kept for the relay), so that a load
    balancer or a liveness probe does not take every web process out for Redis."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "down"; only its type is reported
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = "ok"
    if results["database"] != "ok":
        return JsonResponse({"status": "error", "checks": results}, status=503)
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": results})


def server_error(request):
    """The 500 page; a 503 page when the database could not be reached or dropped the
    connection (the request's transaction was rolled back, unless it was lost during its
    commit: the page asks to check before sending a form again).
    Marks the request so that ``RetryReadOnLostDatabaseMiddleware`` may run a read again."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        request.database_lost = True
        return HttpResponse(loader.get_template("503.html").render(), status=503, headers={"Retry-After": "5"})
    return defaults.server_error(request)
