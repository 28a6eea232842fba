import datetime
import os
import re

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from portal.audit.models import AccessLog
from portal.careteams.models import ClinicianBlock
from records import files, services
from records.models import Document
from tests.conftest import whole_record
from tests.factories import ClinicianFactory

from .conftest import PNG

pytestmark = pytest.mark.django_db


def post_upload(client, upload, **fields):
    data = {"title": "Radio du genou", "category": "imaging", "care_date": "2026-10-20", "file": upload, **fields}
    return client.post(reverse("records:upload"), data)


def stored_files(media_root):
    return [os.path.join(d, f) for d, _, names in os.walk(media_root) for f in names]


def test_patient_uploads_a_pdf_sealed_under_a_random_name(
    client, login, patient, upload, pdf_bytes, media_root, django_capture_on_commit_callbacks
):
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_upload(client, upload("../../etc/passwd.pdf"))
    document = Document.objects.get()
    assert response["Location"] == reverse("records:document", args=[document.pk])
    assert (document.content_type, document.size, document.author_team) == ("application/pdf", len(pdf_bytes), None)
    assert "passwd" not in document.file_name and ".." not in document.file_name
    raw = default_storage.open(document.file_name).read()
    assert pdf_bytes not in raw and b"%PDF" not in raw  # encrypted at rest
    # The processing task ran (eagerly here): the document is ready with a preview.
    assert document.status == "ready" and document.preview_name
    assert client.get(reverse("records:download", args=[document.pk])).content == pdf_bytes


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("virus.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, "Seuls les fichiers PDF"),
        ("photo.png", b"GIF89a" + b"\x00" * 50, "Seuls les fichiers PDF"),
        ("vide.pdf", b"", "Le fichier soumis est vide"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_left(client, login, patient, upload, media_root, name, data, message):
    login(patient)
    response = post_upload(client, upload(name, data))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_too_large_files_are_refused(client, login, patient, upload, settings, media_root):
    settings.DOCUMENT_MAX_BYTES = 1000
    login(patient)
    response = post_upload(client, upload("gros.pdf", b"%PDF-1.7\n" + b"x" * 2000))
    assert response.status_code == 200
    assert "trop volumineux" in response.content.decode()
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_one_byte_over_the_limit_is_not_told_as_the_limit_itself(client, login, patient, upload, settings):
    """It read « (20,0 Mio) ; la limite est de 20,0 Mio »: exact bytes, and Mo in French."""
    assert settings.DOCUMENT_MAX_BYTES == 20 * 1024 * 1024
    login(patient)
    response = post_upload(client, upload("gros.pdf", b"%PDF-1.7\n" + b"x" * (20 * 1024 * 1024 - 8)))
    assert response.context["form"].errors["file"] == [
        "Ce fichier est trop volumineux : 20\xa0971\xa0521 octets, au-delà de la limite de 20 Mo (20\xa0971\xa0520 octets)."
    ]
    assert not Document.objects.exists()
    assert filesizeformat(3000) == "2,9\xa0Ko"  # sizes shown elsewhere use the same units
    # ... without a decimal that says nothing: « 22 Ko », not « 22,0 Ko ».
    assert [files.human_size(size) for size in (3000, 22 * 1024, 1536 * 1024, 500)] == [
        "2,9\xa0Ko", "22\xa0Ko", "1,5\xa0Mo", "500\xa0octets",
    ]  # fmt: skip


def test_images_and_text_are_accepted(client, login, patient, upload):
    login(patient)
    post_upload(client, upload("photo.jpg", PNG))
    post_upload(client, upload("notes.txt", b"Tension 12/8 le matin."))
    assert sorted(Document.objects.values_list("content_type", flat=True)) == ["image/png", "text/plain"]


def test_form_errors_are_shown_next_to_their_fields(client, login, patient, upload):
    login(patient)
    response = post_upload(client, upload(), title="", care_date="pas une date")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ce champ est obligatoire." in page
    assert "Saisissez une date valide." in page
    assert not Document.objects.exists()


@pytest.mark.parametrize("who", ["patient", "clinician"])
def test_no_category_is_chosen_in_advance_and_one_is_required(client, login, request, patient, team, upload, who):
    """Left as it was, an upload would have been filed as a prescription."""
    login(request.getfixturevalue(who))
    url = reverse("records:upload") if who == "patient" else reverse("records:clinician_upload", args=[patient.pk])
    form = client.get(url).context["form"]
    assert form["category"].value() in (None, "")
    assert '<option value="" selected>' in str(form["category"])
    response = post_upload(client, upload(), category="") if who == "patient" else client.post(url, {})
    assert response.status_code == 200 and "category" in response.context["form"].errors
    assert not Document.objects.exists()


def test_an_altered_file_is_refused_and_logged(client, login, patient, patient_document, caplog):
    path = default_storage.path(patient_document.file_name)
    with open(path, "r+b") as handle:
        handle.seek(40)
        handle.write(b"tampered")
    login(patient)
    response = client.get(reverse("records:download", args=[patient_document.pk]))
    assert response.status_code == 409
    assert b"%PDF" not in response.content
    assert f"document {patient_document.pk} failed its integrity check" in caplog.text
    assert "Ordonnance" not in caplog.text  # no health data in logs


def test_a_file_replaced_by_a_validly_sealed_other_file_fails_the_hash(patient_document, pdf_bytes):
    sealed_other, _ = files.crypto.encrypt(pdf_bytes + b"%% appended")
    with open(default_storage.path(patient_document.file_name), "wb") as handle:
        handle.write(sealed_other)
    with pytest.raises(files.IntegrityError):
        services.read_document(document=patient_document)


def test_download_headers(client, login, patient, patient_document):
    login(patient)
    response = client.get(reverse("records:download", args=[patient_document.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="carnet-document-{patient_document.pk}.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    assert "Ordonnance" not in response["Content-Disposition"]


def test_hidden_document_is_seen_by_its_authors_team_only(client, login, patient, clinician, team, clinician_document):
    colleague = ClinicianFactory(teams=[team])
    pharmacist = ClinicianFactory()
    from tests.factories import CareLinkFactory, CareTeamFactory

    pharmacy = CareTeamFactory(name="Pharmacie")
    pharmacist.memberships.create(team=pharmacy)
    CareLinkFactory(patient=patient, team=pharmacy)

    login(patient)
    client.post(reverse("records:set_hidden", args=[clinician_document.pk]), {"hidden": "1"})
    clinician_document.refresh_from_db()
    assert clinician_document.hidden
    for who, status in [(clinician, 200), (colleague, 200), (pharmacist, 404)]:
        login(who)
        assert client.get(reverse("records:document", args=[clinician_document.pk])).status_code == status


def test_a_document_the_patient_uploaded_and_hid_is_seen_by_no_professional(
    client, login, patient, clinician, patient_document
):
    services.set_document_hidden(document=patient_document, hidden=True)
    login(clinician)
    assert client.get(reverse("records:document", args=[patient_document.pk])).status_code == 404
    assert "Ordonnance dermatologue" not in whole_record(client, patient)


def test_blocking_one_clinician_removes_all_their_access(client, login, patient, clinician, team, clinician_document):
    colleague = ClinicianFactory(teams=[team])
    login(patient)
    client.post(reverse("records:block_clinician", args=[clinician.pk]), {"blocked": "1"})
    assert ClinicianBlock.objects.filter(patient=patient, clinician=clinician).exists()
    login(clinician)
    assert client.get(reverse("careteams:patient_detail", args=[patient.pk])).status_code == 404
    assert client.get(reverse("records:document", args=[clinician_document.pk])).status_code == 404
    login(colleague)
    assert client.get(reverse("records:document", args=[clinician_document.pk])).status_code == 200
    login(patient)
    client.post(reverse("records:block_clinician", args=[clinician.pk]), {"blocked": "0"})
    login(clinician)
    assert client.get(reverse("records:document", args=[clinician_document.pk])).status_code == 200


def test_blocking_a_team_and_unblocking_it(client, login, patient, clinician, clinician_document):
    link = patient.care_links.get()
    login(patient)
    client.post(reverse("records:block_team", args=[link.pk]), {"blocked": "1"})
    page = client.get(reverse("records:care_teams")).content.decode()
    assert "pas d’accès par cette équipe tant qu’elle est bloquée" in page and "Lien : <strong>bloqué par vous" in page
    assert reverse("records:block_clinician", args=[clinician.pk]) not in page  # nothing more to block there
    login(clinician)
    assert client.get(reverse("records:document", args=[clinician_document.pk])).status_code == 404
    login(patient)
    client.post(reverse("records:block_team", args=[link.pk]), {"blocked": "0"})
    login(clinician)
    assert client.get(reverse("records:document", args=[clinician_document.pk])).status_code == 200


def test_patient_cannot_block_a_clinician_unrelated_to_them(client, login, patient, other_clinician):
    login(patient)
    assert (
        client.post(reverse("records:block_clinician", args=[other_clinician.pk]), {"blocked": "1"}).status_code == 404
    )


def test_patient_deletes_only_what_they_uploaded(
    client, login, patient, patient_document, clinician_document, django_capture_on_commit_callbacks
):
    names = [patient_document.file_name, patient_document.preview_name]
    login(patient)
    page = client.get(reverse("records:document", args=[patient_document.pk])).content.decode()
    confirm_url = reverse("records:delete", args=[patient_document.pk])
    assert f'href="{confirm_url}"' in page  # a link to a page that asks first
    confirm = client.get(confirm_url).content.decode()
    assert "Supprimer définitivement ?" in confirm and patient_document.title in confirm
    assert Document.objects.filter(pk=patient_document.pk).exists()
    client.post(reverse("records:delete", args=[clinician_document.pk]))
    assert Document.objects.filter(pk=clinician_document.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("records:delete", args=[patient_document.pk]))
    assert not Document.objects.filter(pk=patient_document.pk).exists()
    assert not any(default_storage.exists(name) for name in names)
    assert default_storage.exists(clinician_document.file_name)


def test_clinician_reads_are_traced_and_the_patient_sees_them(client, login, patient, clinician, clinician_document):
    login(clinician)
    client.get(reverse("records:document", args=[clinician_document.pk]))
    client.get(reverse("records:download", args=[clinician_document.pk]))
    actions = list(AccessLog.objects.values_list("action", "target"))
    assert actions == [
        ("download_document", "Compte rendu de consultation"),
        ("view_document", "Compte rendu de consultation"),
    ]
    login(patient)
    client.get(reverse("records:document", args=[clinician_document.pk]))
    assert AccessLog.objects.count() == 2  # the patient's own reads are not traced
    page = client.get(reverse("records:access_history")).content.decode()
    assert "A téléchargé un document" in page and clinician.get_full_name() in page


def test_repeated_reads_show_as_one_line_and_stay_in_the_log(client, login, patient, clinician, clinician_document):
    url = reverse("records:document", args=[clinician_document.pk])
    start = datetime.datetime(2026, 11, 20, 10, 0, tzinfo=datetime.UTC)
    login(clinician)
    for minutes in (0, 5, 10, 30):  # three a few minutes apart, then one twenty minutes later
        with time_machine.travel(start + datetime.timedelta(minutes=minutes), tick=False):
            client.get(url)
    assert AccessLog.objects.count() == 4
    login(patient)
    response = client.get(reverse("records:access_history"))
    assert [(v["log"].at.minute, v["count"], v["since"].minute) for v in response.context["visits"]] == [
        (30, 1, 30),
        (10, 3, 0),
    ]
    page = response.content.decode()
    assert "3 fois depuis 11:00" in page  # Paris time
    assert "A ouvert un document : Compte rendu de consultation" in page


def test_team_inbox_listings_of_several_conversations_are_one_line_naming_them(client, login, patient, clinician, team):
    """The team inbox logs each conversation it shows: loads a few minutes apart, each
    listing the patient's five conversations, read as one line naming three and the count
    of the others, not as a page of alternating lines."""
    from messaging import services as messaging

    for n in range(5):
        messaging.start_conversation(
            author=patient.user, patient=patient, team=team, subject=f"Question {n}", kind="question", body="Bonjour"
        )
    start = datetime.datetime(2026, 11, 20, 10, 0, tzinfo=datetime.UTC)
    login(clinician)
    for minutes in (0, 3, 6):
        with time_machine.travel(start + datetime.timedelta(minutes=minutes), tick=False):
            client.get(reverse("messaging:team_inbox"))
    assert AccessLog.objects.filter(action="list_conversations").count() == 15
    login(patient)
    response = client.get(reverse("records:access_history"))
    (visit,) = response.context["visits"]
    assert (visit["count"], len(visit["targets"]), visit["more"]) == (15, 3, 2)
    page = response.content.decode()
    assert re.search(
        r"A vu une conversation dans la boîte de l’équipe : (Question \d, ){2}Question \d et 2 autres", page
    )


def test_clinician_publishes_a_document_for_their_patient(client, login, clinician, patient, team, upload):
    login(clinician)
    response = client.post(
        reverse("records:clinician_upload", args=[patient.pk]),
        {"title": "Bilan sanguin", "category": "lab_report", "care_date": "2026-11-02", "file": upload()},
    )
    document = Document.objects.get()
    assert response.status_code == 302
    assert (document.patient, document.author, document.author_team) == (patient, clinician, team)


def test_filters_stay_out_of_the_url(client, login, patient, patient_document, clinician_document):
    login(patient)
    response = client.post(reverse("records:documents"), {"title": "dermato", "category": ""})
    assert response["Location"] == reverse("records:documents")
    listed = client.get(response["Location"]).context["page"].object_list
    assert [d.pk for d in listed] == [patient_document.pk]
    team_filter = client.post(reverse("records:documents"), {"team": clinician_document.author_team_id})
    assert [d.pk for d in client.get(team_filter["Location"]).context["page"].object_list] == [clinician_document.pk]
    reversed_dates = client.post(reverse("records:documents"), {"date_from": "2026-12-01", "date_to": "2026-01-01"})
    assert reversed_dates.status_code == 200
    assert "La date de fin est antérieure" in reversed_dates.content.decode()
    # Not the team-filtered list under a form that now shows other filters.
    assert "Corrigez les filtres pour voir les documents correspondants." in reversed_dates.content.decode()
    assert clinician_document.title not in reversed_dates.content.decode()
    client.post(reverse("records:documents"), {"reset": "1"})
    assert len(client.get(reverse("records:documents")).context["page"].object_list) == 2


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_filters_are_written_as_the_form_writes_them(client, login, patient, clinician_document, language):
    """With no filter chosen, the filter fields are written once per language and teams
    (portal.widgets.empty_form_html); filters chosen are written anew: each visit shows
    what the form, built then, writes, whatever the visits before it showed; a form
    refused shows what was sent."""
    from records.forms import DocumentFilterForm
    from records.views import FILTERS_SESSION_KEY

    login(patient)
    client.cookies["django_language"] = language
    team = clinician_document.author_team
    url = reverse("records:documents")
    saved_filters = [
        {},
        {"category": "report", "date_from": "2026-01-01", "date_to": "", "team": team.pk, "title": "dermato"},
        {"category": "", "date_from": "", "date_to": "2026-02-01", "team": "", "title": '<b>"x"</b>'},
        {},
    ]
    for saved in saved_filters:
        session = client.session
        session[FILTERS_SESSION_KEY] = saved
        session.save()
        page = client.get(url).content.decode()
        with translation.override(language):
            form = DocumentFilterForm(initial=saved, teams=[(team.pk, team.name)])
            assert str(form.fields_html()) in page
        assert ('value="dermato"' in page) == (saved.get("title") == "dermato")
    refused = client.post(url, {"date_from": "2026-12-01", "date_to": "2026-01-01", "title": "refusé"}).content.decode()
    assert 'value="refusé"' in refused and 'class="errorlist"' in refused
    assert 'value="refusé"' not in client.get(url).content.decode()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_document_table_reads_as_the_include_writes_it(patient, parent, clinician, team, language):
    """records.display.document_table_html writes records/document_table.html for a
    patient-side reader and for a care team's (with its confidentiality forms): new,
    withdrawn, replaced, processing, hidden, by a team or not."""
    from django.template.loader import render_to_string
    from django.utils import timezone, translation
    from django.utils.safestring import SafeString

    from records import display

    def document(pk, **fields):
        fields = {"title": f"Compte <rendu> {pk} & d'hier", "category": "report", "status": "ready", **fields}
        return Document(pk=pk, patient=patient, care_date=datetime.date(2026, 3, pk), **fields)

    documents = [
        document(1, author=patient.user),
        document(2, author_team=team, withdrawn_at=timezone.now()),
        document(3, replaced_by_id=1, hidden=True, author=parent.user),  # a parent's upload
        document(4, status="processing", author_team=team, category="imaging"),
        document(5, hidden=True, category="unknown", author=patient.user),
    ]
    documents[0].confidential_form = SafeString('<form class="c">1</form>')  # a care team's, for its own
    you = {"fr": "Vous", "en": "You"}[language]
    with translation.override(language):
        for user, new, added in (
            (patient.user, {1, 4}, [you, team.name, "Marie Durand", team.name, you]),
            (parent.user, set(), ["Camille Durand", team.name, you, team.name, "Camille Durand"]),
            (clinician, set(), ["Camille Durand", team.name, "Marie Durand", team.name, "Camille Durand"]),
        ):
            display.prepare_documents(documents, reader=user)
            assert [document.added_by for document in documents] == added  # who added it, as its page says
            expected = render_to_string(
                "records/document_table.html", {"documents": documents, "new": new, "user": user}
            )
            assert str(display.document_table_html(documents, new=new, user=user)) == expected
            assert ('<form class="c">1</form>' in expected) is user.is_clinician


def count_queries(client, url):
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


def test_list_and_detail_query_counts_do_not_grow(client, login, patient, clinician, team, upload):
    def add(n):
        for i in range(n):
            services.upload_document(
                author=clinician, patient=patient, upload=upload(data=PNG), title=f"Doc {i}",
                category="other", care_date=datetime.date(2026, 1, 1), team=team,
            )  # fmt: skip

    add(1)
    document = Document.objects.first()
    urls = [
        (patient, reverse("records:documents")),
        (patient, reverse("records:document", args=[document.pk])),
        (patient, reverse("patient_home")),
        (clinician, reverse("careteams:patient_documents", args=[patient.pk])),
        (patient, reverse("records:access_history")),
    ]
    before = []
    for who, url in urls:
        login(who)
        before.append(count_queries(client, url))
    add(15)
    after = []
    for who, url in urls:
        login(who)
        after.append(count_queries(client, url))
    assert after == before


def test_processing_is_idempotent(patient_document):
    preview = patient_document.preview_name
    services.process_document(document_id=patient_document.pk)
    patient_document.refresh_from_db()
    assert patient_document.preview_name == preview


def test_the_status_column_says_something_for_every_document(
    client, login, clinician, patient, clinician_document, patient_document
):
    """Issue 20: the « Statut » column was empty for an ordinary document. Each row now
    says whether it is available or still being processed, and whether it is hidden."""
    import re

    Document.objects.filter(pk=patient_document.pk).update(hidden=True)
    processing = Document.objects.get(pk=patient_document.pk)
    processing.pk, processing.title, processing.status, processing.hidden = None, "Radio", "processing", False
    processing.save()
    login(patient)
    page = client.get(reverse("records:documents")).content.decode()
    cells = {
        title: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", status)).strip()
        for title, status in re.findall(
            r'<th scope="row"><a [^>]*>([^<]+)</a>.*?<td data-label="Statut">(.*?)</td>', page, re.S
        )
    }
    assert cells == {
        clinician_document.title: "Disponible",
        patient_document.title: "Disponible · Masqué aux professionnels",
        processing.title: "En traitement…",
    }


def test_the_page_of_a_document_being_processed_reloads_itself_when_it_is_ready(
    client, login, clinician, patient, other_patient, clinician_document
):
    """The page asks in the background whether processing is over: 204 while it is not
    (nothing of the record, not logged, not activity), then an empty answer telling htmx
    to reload the page (the reload is the logged read); after ten minutes it stops
    asking (286). Another person's document is a 404, as everywhere."""
    import datetime as dt

    from django.utils import timezone

    from portal.audit.models import AccessLog

    Document.objects.filter(pk=clinician_document.pk).update(status="processing")
    status_url = reverse("records:document_status", args=[clinician_document.pk])
    login(clinician)
    page = client.get(reverse("records:document", args=[clinician_document.pk])).content.decode()
    assert f'hx-get="{status_url}"' in page and "se met à jour d’elle-même" in page
    logged = AccessLog.objects.count()
    background = {"HTTP_X_CARNET_BACKGROUND": "1", "HTTP_HX_REQUEST": "true"}
    waiting = client.get(status_url, **background)
    assert (waiting.status_code, waiting.content, waiting.headers.get("HX-Refresh")) == (204, b"", None)
    Document.objects.filter(pk=clinician_document.pk).update(status="ready")
    ready = client.get(status_url, **background)
    assert (ready.status_code, ready.content, ready.headers["HX-Refresh"]) == (200, b"", "true")
    assert AccessLog.objects.count() == logged
    page = client.get(reverse("records:document", args=[clinician_document.pk])).content.decode()
    assert "hx-get" not in page.split('id="preview-title"')[1]
    Document.objects.filter(pk=clinician_document.pk).update(
        status="processing", created_at=timezone.now() - dt.timedelta(minutes=11)
    )
    assert client.get(status_url, **background).status_code == 286
    login(other_patient)
    assert client.get(status_url, **background).status_code == 404
