from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext_lazy
from django.views.decorators.http import require_http_methods, require_safe

from fhir_api import services as api
from messaging import services as messaging_services
from portal import access, rows, widgets
from portal.accounts import services as account_services
from portal.accounts.forms import InvitePatientForm
from portal.accounts.models import Representation, User
from portal.audit.models import AccessLog
from portal.careteams import forms, services
from portal.careteams.models import CareLink
from portal.idempotency import idempotent
from portal.pagination import Rows, keyset_page
from portal.prepared import prepared
from portal.representation import services as representation
from portal.representation.forms import AddParentForm
from portal.secret_once import secret_page, show_secret_once
from records import display as record_display
from records import services as record_services
from records import views as record_views
from records.models import Document, LabReport, Prescription

PAGE_SIZE = 25
# Lab reports on a patient's results page: each comes with its table of values.
RESULTS_PAGE_SIZE = 10
# The most reports new to the team shown above the history (more: in the history itself).
NEW_RESULTS_SHOWN = 20
# The upcoming appointments on a patient's page (the team agenda has them all).
APPOINTMENTS_SHOWN = 20
# The care team's search, kept in the session: names and identifiers stay out of URLs.
SEARCH_SESSION_KEY = "care_search"


def _patient_list_rows(user_id):
    """The patients the clinician ``user_id`` cares for (``access.patients_cared_for``),
    as the list shows them: a builder of prepared queries (``portal.prepared``)."""
    return access.patients_cared_for_by(user_id).only("first_name", "last_name", "birth_date")


@prepared
def _shared_links(user_id, *patient_ids):
    """(patient id, team name) of the active links of ``patient_ids`` with the teams of
    the clinician ``user_id``, by team name: the list's "Care teams" column."""
    links = CareLink.objects.filter(
        status=CareLink.Status.ACTIVE, team__in=access.clinicians_teams(user_id), patient__in=patient_ids
    )
    return links.order_by("team__name", "team_id").values_list("patient_id", "team__name")


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def patient_list(request):
    """The patients of the clinician's care teams, with the teams they are linked through;
    searched by name prefix (accents aside), INS and birth date, or those with unread messages."""
    if request.method == "POST":
        form = forms.PatientSearchForm(request.POST)
        if "clear" in request.POST or not form.is_valid():
            request.session.pop(SEARCH_SESSION_KEY, None)
        else:
            request.session[SEARCH_SESSION_KEY] = {name: request.POST.get(name, "") for name in form.fields}
        return redirect("careteams:patient_list")
    form = forms.PatientSearchForm(request.session.get(SEARCH_SESSION_KEY) or None)
    searching = form.is_bound and form.is_valid()
    patients = Rows.of(_patient_list_rows, request.user.pk)  # prepared: what most visits show
    if searching:
        patients = patients.queryset()
        data = form.cleaned_data
        patients = patients.matching(name=data["name"], ins=data["ins"], birth_date=data["birth_date"])
        if data["unread"]:
            unread = messaging_services.conversations_unread_by(user=request.user)
            patients = patients.filter(Exists(unread.filter(patient=OuterRef("pk"))))
        if data["new_results"]:
            unseen = services.results_unseen_by(teams=access.teams_of(request.user))
            patients = patients.filter(Exists(unseen.filter(patient=OuterRef("pk"))))
    # By name, from a cursor: a deep page costs what the first does (no OFFSET, no COUNT).
    page = keyset_page(patients, request.GET, fields=("last_name", "first_name"), size=PAGE_SIZE, descending=False)
    shared = {}
    if page.object_list:
        for patient_id, team_name in _shared_links(request.user.pk, *(patient.pk for patient in page.object_list)):
            shared.setdefault(patient_id, []).append(team_name)
    # Searching for new results, a patient's link opens their results, which makes them seen.
    page_name = (
        "careteams:patient_results" if searching and form.cleaned_data["new_results"] else "careteams:patient_detail"
    )
    teams_named = access.clinicians_teams_named(request.user.pk)
    context = {"page": page, "teams": teams_named, "form": form, "searching": searching}
    # A search kept (names, identifiers: never kept here), or one that no longer holds
    # (with its errors), is written anew.
    if form.is_bound:
        context["search_fields_html"] = render_to_string(SEARCH_FIELDS, {"form": form})
    else:
        context["search_fields_html"] = widgets.empty_form_html(SEARCH_FIELDS, forms.PatientSearchForm)
    context["rows_html"] = _patient_rows_html(page.object_list, shared, url=rows.url_by_pk(page_name, as_html=True))
    return render(request, "careteams/patient_list.html", context)


SEARCH_FIELDS = "careteams/patient_search_fields.html"


# A row of the patient list, written in Python with each value escaped as the template
# escapes it (``portal.rows``): as a template loop, 25 rows cost more than the page's queries.
PATIENT_ROW = """
            <tr>
              <th scope="row"><a href="{url}">{name}</a></th>
              <td data-label="{born_label}">{born}</td>
              <td data-label="{teams_label}">{teams}</td>
            </tr>
          """


def _patient_rows_html(patients, shared, *, url):
    """The list's rows: each patient's link (``url`` of their pk, as HTML), name, birth date and the
    teams (``shared``: names by patient pk) the clinician's teams share them with."""
    escaped, born = rows.escaped, rows.date_formatter("SHORT_DATE_FORMAT", as_html=True)
    labels = {"born_label": _("Birth date"), "teams_label": _("Care teams")}  # translations: not escaped
    return mark_safe(  # noqa: S308 (every value escaped)
        "".join(
            PATIENT_ROW.format(
                url=url(patient.pk),
                name=escaped(f"{patient.last_name.upper()} {patient.first_name}"),
                born=born(patient.birth_date),
                teams=escaped(", ".join(shared.get(patient.pk, ()))),
                **labels,
            )
            for patient in patients
        )
    )


def _prepare_appointments(appointments):
    """What agenda/patient_appointments.html shows of each appointment, worked out once per
    page: its start (local time), duration, status, whether it is cancelled, its links."""
    appointments = list(appointments)
    when = rows.date_formatter("DATETIME_FORMAT")
    edit_url, cancel_url = rows.url_by_pk("agenda:edit"), rows.url_by_pk("agenda:cancel")
    for appointment in appointments:
        minutes = appointment.duration_minutes
        appointment.start_text = when(appointment.starts_at)
        appointment.duration_text = ngettext("%(minutes)s minute", "%(minutes)s minutes", minutes) % {
            "minutes": minutes
        }
        appointment.status_text = appointment.status_shown
        appointment.cancelled = appointment.is_cancelled
        appointment.edit_url, appointment.cancel_url = edit_url(appointment.pk), cancel_url(appointment.pk)
    return appointments


def _render_record_page(request, tab, context, *, patient, links, action):
    """One page of a patient's record for their care team (``tab``: the summary or one
    history, each its own page: careteams/patient_<tab>.html), logged as read through the
    clinician's first team caring for the patient. Its results tab says when another team
    published results since the clinician's teams last looked (the results page shows them)."""
    context = {"patient": patient, "links": links, "tab": tab, **context}
    if tab != "results":
        context["new_results"] = bool(_teams_with_new_results(patient.pk, request.user.pk))
    return access.render_record(
        request, f"careteams/patient_{tab}.html", context, patient=patient, action=action,
        team=next((link.team for link in links if link.mine), None),
    )  # fmt: skip


def _new_results(patient_id, user_id):
    """``services.results_new_to`` the clinician ``user_id``'s teams, with their teams,
    for a patient ``get_cared_patient`` checked for them in this request: a builder of
    prepared queries (``portal.prepared``)."""
    reports = access.cared_patients_rows(patient_id, user_id, model=LabReport, related=("team",))
    return services.results_new_to(teams=access.clinicians_teams(user_id), patient=patient_id, reports=reports)


@prepared
def _first_new_results(patient_id, user_id, *, limit):
    return _new_results(patient_id, user_id)[:limit]


@prepared
def _teams_with_new_results(patient_id, user_id):
    """Whether there are ``_new_results``: ``services.teams_with_results_new_to``."""
    reports = access.cared_patients_rows(patient_id, user_id, model=LabReport)
    teams = access.clinicians_teams(user_id)
    return services.teams_with_results_new_to(teams=teams, patient=patient_id, reports=reports)[:1]


@prepared
def _representations_in_force(patient_id, now):
    return Representation.objects.active(now).filter(patient=patient_id).select_related("representative")


def _cared_record(request, pk):
    """The patient (404 unless the clinician cares for them), the record's active care
    links (``mine``: one this clinician may end), and the ids of the teams through which
    this clinician may correct what they published."""
    patient = access.get_cared_patient(request.user, pk)
    links = access.links_of_cared_patient(request.user, patient)
    return patient, links, {link.team_id for link in links if link.mine}


@access.role_required(User.Role.CLINICIAN)
@require_safe
def patient_detail(request, pk):
    """A patient's record for their care team, its summary: identity, care teams,
    representatives, upcoming appointments and the medical profile. The documents,
    prescriptions and lab results are each a page of their own (below)."""
    user = request.user
    patient, links, correctable = _cared_record(request, pk)
    appointments = _prepare_appointments(access.upcoming_appointments_of(user, patient, limit=APPOINTMENTS_SHOWN))
    context = {
        "appointments": appointments,
        "correctable_teams": correctable,  # the profile's entries these teams wrote have their controls
        "representations": _representations_in_force(patient.pk, timezone.now()),
        **record_views.profile_for(user, patient),
    }
    return _render_record_page(
        request, "detail", context, patient=patient, links=links, action=AccessLog.Action.VIEW_RECORD
    )


@access.role_required(User.Role.CLINICIAN)
@require_safe
def patient_documents(request, pk):
    """A patient's documents for their care team, newest first, paged by cursor; the
    publishing team's own have their confidentiality control."""
    user = request.user
    patient, links, correctable = _cared_record(request, pk)
    documents = access.items_of_patient_rows(user, patient, Document, related=("author_team",))
    page = keyset_page(documents, request.GET, field="care_date", size=PAGE_SIZE)
    record_display.prepare_documents(page.object_list, reader=user)
    confidential_form = record_display.confidential_forms(request)
    for document in page.object_list:  # the publishing team's to decide, as corrections are
        document.confidential_form = (
            confidential_form("document", document, document.title)
            if document.author_team_id in correctable and not document.withdrawn_at  # withdrawn: the patient's alone
            else ""
        )
    context = {"page": page, "table_html": record_display.document_table_html(page.object_list, new=(), user=user)}
    return _render_record_page(
        request, "documents", context, patient=patient, links=links, action=AccessLog.Action.LIST_DOCUMENTS
    )


@access.role_required(User.Role.CLINICIAN)
@require_safe
def patient_prescriptions(request, pk):
    """A patient's prescriptions for their care team, newest first, paged by cursor; the
    prescribing team's own have their correction and confidentiality controls."""
    user = request.user
    patient, links, correctable = _cared_record(request, pk)
    prescriptions = access.items_of_patient_rows(
        user, patient, Prescription, related=("prescriber", "team", "replaced_by")
    )
    page = keyset_page(prescriptions, request.GET, field="start_date", size=PAGE_SIZE)
    record_display.prepare_prescriptions(
        page.object_list, correctable_teams=correctable, confidential_form=record_display.confidential_forms(request)
    )
    return _render_record_page(
        request,
        "prescriptions",
        {"page": page},
        patient=patient,
        links=links,
        action=AccessLog.Action.VIEW_PRESCRIPTIONS,
    )


@access.role_required(User.Role.CLINICIAN)
@require_safe
def patient_results(request, pk):
    """A patient's lab reports for their care team, newest first, paged by cursor, each
    with its table of values; the publishing team's own have their correction links and
    confidentiality control. Opening it is what makes new results seen by the team
    (``services.results_unseen_by``)."""
    user = request.user
    patient, links, correctable = _cared_record(request, pk)
    page = keyset_page(
        access.items_of_patient_rows(user, patient, LabReport, related=("team",)),
        request.GET, field="collected_on", size=RESULTS_PAGE_SIZE,
    )  # fmt: skip
    # What other teams published since this clinician's teams last looked: marked "new" on
    # this page, and shown above it when the history has them on another page (a report of
    # an old sample arrives late), so that what this reading makes seen has been shown.
    new = _first_new_results(patient.pk, user.pk, limit=NEW_RESULTS_SHOWN + 1)
    more_new = (  # said, not shown
        _new_results(patient.pk, user.pk).count() - NEW_RESULTS_SHOWN if len(new) > NEW_RESULTS_SHOWN else 0
    )
    new = new[:NEW_RESULTS_SHOWN]
    on_page = {report.pk for report in page.object_list}
    elsewhere = [report for report in new if report.pk not in on_page]
    shown = [*elsewhere, *page.object_list]
    values = record_services.observations_by_report(report.pk for report in shown)
    write = record_display.report_writer(request, correctable, new={report.pk for report in new})
    for report in shown:
        report.html = write(report, values[report.pk], level=4 if report in elsewhere else 3)
    return _render_record_page(
        request, "results", {"page": page, "new_elsewhere": elsewhere, "more_new": more_new}, patient=patient,
        links=links,
        action=AccessLog.Action.LIST_RESULTS,
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def invite_patient(request, pk):
    """Invite a patient of one's care teams, who has no login yet, to create one."""
    patient = access.get_cared_patient(request.user, pk)
    if patient.user_id is not None:
        raise Http404
    form = InvitePatientForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            account_services.invite_patient(invited_by=request.user, patient=patient, email=form.cleaned_data["email"])
        except account_services.TooManyWrongProofs as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, _("The invitation has been sent. The link is valid for 72 hours."))
            return redirect("careteams:patient_detail", pk=patient.pk)
    return access.render_record(
        request, "careteams/invite_patient.html", {"patient": patient, "form": form},
        patient=patient, action=AccessLog.Action.VIEW_RECORD,
    )  # fmt: skip


# Said in the patient's grammatical gender where French has one ("enregistrée"), by their sex.
REGISTERED = {
    "female": (pgettext_lazy("female", "%(name)s is registered and linked to %(team)s."),
               pgettext_lazy("female", "%(name)s is linked to %(team)s.")),
    "male": (pgettext_lazy("male", "%(name)s is registered and linked to %(team)s."),
             pgettext_lazy("male", "%(name)s is linked to %(team)s.")),
}  # fmt: skip


def _registered_message(request, done: services.Registered):
    registered, linked = REGISTERED.get(
        done.patient.sex, (_("%(name)s is registered and linked to %(team)s."), _("%(name)s is linked to %(team)s."))
    )
    text = registered if done.created else linked
    messages.success(request, text % {"name": done.patient.full_name, "team": done.link.team.name})
    if done.invited:
        messages.success(request, _("The invitation has been sent. The link is valid for 72 hours."))


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def register_patient(request):
    """Register a patient for one of the clinician's teams. Before anyone is created, the
    records that may be the same person are shown, to link one of them instead."""
    teams = access.teams_of(request.user)
    if not teams.exists():
        raise Http404
    form = forms.RegisterPatientForm(request.POST if request.method == "POST" else None, teams=teams)
    candidates, same_ins = [], False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        team = access.get_team_for(request.user, data["team"].pk)
        try:
            if request.POST.get("link", "").isdecimal():
                done = services.link_existing_patient(
                    by=request.user,
                    team=team,
                    identity=form.identity(),
                    patient_pk=int(request.POST["link"]),
                    started_on=data["started_on"],
                    invite_email=data["email"],
                )
            else:
                done = services.register_patient(
                    by=request.user,
                    team=team,
                    identity=form.identity(),
                    started_on=data["started_on"],
                    invite_email=data["email"],
                    none_of=form.set_aside(),
                )
        except services.PatientExists as exists:
            candidates, same_ins = [exists.patient], True
        except services.PossibleDuplicates as duplicates:
            candidates = duplicates.candidates
        except services.LinkBlocked as refusal:
            form.add_error(None, str(refusal))
        except services.NotAMatch:
            form.add_error(None, _("This record does not match the identity given: check it and search again."))
        else:
            _registered_message(request, done)
            return redirect("careteams:patient_detail", pk=done.patient.pk)
    context = {
        "form": form,
        "candidates": services.with_link_status(team, candidates) if candidates else [],
        "candidate_ids": ",".join(str(candidate.pk) for candidate in candidates),
        "same_ins": same_ins,
    }
    for candidate in candidates:  # the person learns who found their record, and when
        access.trace_read(request.user, candidate, AccessLog.Action.IDENTITY_MATCH)
    return render(request, "careteams/register_patient.html", context)


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def end_link(request, pk):
    """End the link of one of the clinician's teams with a patient, on a date: the team
    loses access at once."""
    link = access.get_managed_link(request.user, pk)
    form = forms.EndLinkForm(request.POST if request.method == "POST" else None, link=link)
    if request.method == "POST" and form.is_valid():
        services.end_link(by=request.user, link=link, ended_on=form.cleaned_data["ended_on"])
        messages.success(
            request,
            _("The link between %(team)s and %(name)s has ended; the team no longer has access to the record.")
            % {"team": link.team.name, "name": link.patient.full_name},
        )
        return redirect("careteams:patient_list")
    return access.render_record(
        request, "careteams/end_link.html", {"link": link, "form": form},
        patient=link.patient, action=AccessLog.Action.VIEW_RECORD,
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def add_parent(request, pk):
    """A care team adds a holder of parental authority to a minor's record (from birth),
    by the parent's own Carnet account; each parent may be added. The proof seen is kept."""
    patient = access.get_cared_patient(request.user, pk)
    form = AddParentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            representation.add_representative(
                patient=patient, email=form.cleaned_data["email"], kind=Representation.Kind.PARENT,
                created_by=request.user, proof=form.cleaned_data["proof"],
                reason=str(access.team_caring_for(request.user, patient) or ""),
            )  # fmt: skip
        except representation.RepresentationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The parent has been added, and told so by email."))
            return redirect("careteams:patient_detail", pk=patient.pk)
    return access.render_record(
        request, "careteams/add_parent.html", {"patient": patient, "form": form},
        patient=patient, action=AccessLog.Action.VIEW_RECORD,
    )  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def team_settings(request, pk):
    """A care team's settings: the cancellation notice of appointments and the stated
    reply time. Every member reads them; a manager changes them."""
    team, manages = access.get_team_settings_for(request.user, pk)
    form = forms.TeamSettingsForm(request.POST if request.method == "POST" and manages else None, instance=team)
    if request.method == "POST":
        if not manages:
            raise Http404
        if form.is_valid():
            form.save(commit=False).save(update_fields=list(form.Meta.fields))
            messages.success(request, _("The team's settings are saved."))
            return redirect("careteams:team_settings", team.pk)
    clients = team.api_clients.select_related("application")
    context = {"team": team, "form": form, "manages": manages, "clients": clients}
    return render(request, "careteams/team_settings.html", context)


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def new_api_client(request, pk):
    """A manager of the team registers its software for the FHIR API (as support does)."""
    team, manages = access.get_team_settings_for(request.user, pk)
    if not manages:
        raise Http404
    form = forms.ApiClientForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            client, secret = api.register_client(
                team=team, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], created_by=request.user
            )
        except ValidationError as error:
            form.add_error("name" if error.code == "name_taken" else "scopes", error)
        else:
            return show_secret_once(request, client, secret, page="careteams:api_client_secret")
    return render(request, "careteams/api_client_new.html", {"team": team, "form": form})


@access.role_required(User.Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
@idempotent
def change_api_client(request, pk, action):
    """A manager of the team gives a client a new secret (shown once) or revokes it for good."""
    client = access.get_team_api_client_for(request.user, pk)
    if action not in ("rotate", "revoke"):
        raise Http404
    if request.method == "GET":  # asked first: the software stops at once
        back_url = reverse("careteams:team_settings", args=[client.team_id])
        if client.is_revoked:
            return redirect(back_url)
        return render(request, "api_client_confirm.html", {"client": client, "action": action, "back_url": back_url})
    if action == "rotate" and not client.is_revoked:
        secret = api.rotate_secret(client=client, by=request.user)
        return show_secret_once(request, client, secret, page="careteams:api_client_secret")
    if action == "revoke":
        if api.revoke_client(client=client, by=request.user):
            messages.success(request, _("The client is revoked: its tokens no longer work."))
        return redirect("careteams:team_settings", client.team_id)
    raise Http404


@access.role_required(User.Role.CLINICIAN)
@require_safe
def api_client_secret(request, pk):
    """The secret just made, shown on this page once; afterwards, that it was shown."""
    client = access.get_team_api_client_for(request.user, pk)
    return secret_page(request, client, done_url=reverse("careteams:team_settings", args=[client.team_id]))
