"""What the records tables show of each row, worked out once per page in Python rather
than per row in the template: a link per row costs a ``reverse``, a number its
formatting, a label a translation lookup, and a template pays for each again on every
row. The strings are those the template filters make (the same functions), so the page
reads the same in French and in English."""

import re
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.template import Context
from django.template.loader import get_template
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext

from portal.csrf import csrf_token
from portal.idempotency import FIELD
from portal.rows import date_formatter, escaped, labels_of, url_by_pk
from records.models import Document, Observation, Prescription


def measured(value) -> str:
    """A measured value as the laboratory wrote it, in the reader's decimal mark: every
    decimal it has, none added (0,004 stays 0,004, never "0,00"; 5,4000 is 5,4); "" for none."""
    if value is None or value == "":
        return ""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return number_format((value + 0).normalize())  # + 0: no "-0"


class _Numbers:
    """``measured`` of each distinct value once (reference limits repeat on every row of
    a test)."""

    def __init__(self):
        self.seen = {}

    def __call__(self, value):
        if value is None:
            return ""
        found = self.seen.get(value)
        if found is None:
            found = self.seen[value] = measured(value)
        return found


def prepare_documents(documents, *, reader):
    """Set on each of ``documents`` what ``records/document_table.html`` shows to ``reader``:
    ``url`` (its page), ``category_label``, ``care_date_text`` and ``added_by`` (the team
    that published it; else "You" for the reader's own upload, or the name of whoever
    added it on the patient's side: the patient, a parent, a helper, as the document's
    page says), the names in one query. Returns them, as a list."""
    documents = list(documents)
    url, day = url_by_pk("records:document"), date_formatter("SHORT_DATE_FORMAT")
    categories = labels_of(Document._meta.get_field("category").choices)
    others = {d.author_id for d in documents if d.author_team_id is None and d.author_id != reader.pk}
    names = {}
    if others:
        people = get_user_model().objects.filter(pk__in=others).values_list("pk", "first_name", "last_name")
        names = {pk: f"{first} {last}".strip() for pk, first, last in people}
    you = gettext("You")
    for document in documents:
        document.url = url(document.pk)
        document.category_label = categories.get(document.category, document.category)
        document.care_date_text = day(document.care_date)
        if document.author_team_id is not None:
            document.added_by = document.author_team.name
        else:
            document.added_by = you if document.author_id == reader.pk else names.get(document.author_id, "")
    return documents


def _t(message, context=None):
    """A literal translated as ``{% translate %}`` does it: a template's literal is safe,
    and so is its translation (neither is escaped)."""
    return pgettext(context, SafeString(message)) if context else gettext(SafeString(message))


def _with_labels(row, **labels):
    """``row``, a ``str.format`` string, with its labels written in once per page (their
    translations, which the templates do not escape either); its other fields stay."""
    for name, label in labels.items():
        row = row.replace("{" + name + "}", label.replace("{", "{{").replace("}", "}}"))
    return row


# The rows below are written with str.format, each value escaped as the template escaped
# it (portal.rows.escaped: Django's escape in one call), or left as it is when the template left
# it so: a safe string (a number from ``measured``, a translated literal, a fragment
# written here). A row costs a few calls instead of a template's lookup per value.


def _flag_class_and_label(flag, labels) -> tuple[str, str]:
    """A value's flag as its row shows it: its class (``flag-high``...) and its label from
    ``labels`` (``labels_of(Observation.Flag.choices)``); "none" and nothing for no flag
    (no range and no interpretation: nothing to say)."""
    return (flag.value, labels[flag]) if flag else ("none", "")


def history_rows_html(rows, earlier_values):
    """The rows of a test's history table (``records/observation_history.html``), as its
    template loop wrote them, from ``rows`` (observations, or their ``HISTORY_FIELDS``
    as named tuples) and, for each, its ``earlier_values`` (revisions, newest first);
    tests/records/test_records_pages_cost.py holds them to the rows as each was prepared
    and written before. A row's cells but its date and its earlier values are the same
    for the same value, unit, range and flag: written once."""
    value_label, range_label, flag_label = _t("Value"), _t("Reference range"), _t("Flag")
    corrected = _t("Corrected on %(date)s; earlier value: %(value)s %(unit)s")
    day, number, flags = (
        date_formatter("SHORT_DATE_FORMAT", as_html=True),
        _Numbers(),
        labels_of(Observation.Flag.choices),
    )
    written, out = {}, []
    flag_of = Observation.flag_of
    for row, revisions in zip(rows, earlier_values, strict=True):
        flag = flag_of(row.interpretation, row.value, row.low, row.high)  # None: nothing to say
        key = (flag, row.value, row.unit, row.low, row.high)
        cells = written.get(key)
        if cells is None:
            flag_class, flag_text = _flag_class_and_label(flag, flags)
            low, high = number(row.low) or "…", number(row.high) or "…"
            cells = written[key] = (
                f'\n          <tr class="flag-{flag_class}"><th scope="row">',
                f'</th><td data-label="{value_label}">{number(row.value)} {escaped(row.unit)}',
                f'</td>\n          <td data-label="{range_label}">{low} – {high}</td><td data-label="{flag_label}">'
                f'<span class="flag">{escaped(flag_text)}</span></td></tr>\n        ',
            )
        earlier = ""
        for revision in revisions:
            # What {% blocktranslate %} does: the values escaped (``day``'s text is), the sentence as translated.
            values = {"date": day(revision.replaced_at), "value": escaped(number(revision.value))}
            earlier += '<br><small class="status">' + corrected % {**values, "unit": escaped(revision.unit)}
            earlier += (f" — {escaped(revision.reason)}" if revision.reason else "") + "</small>"
        out.append(f"{cells[0]}{day(row.collected_on)}{cells[1]}{earlier}{cells[2]}")
    return SafeString("".join(out))


_DOCUMENT_ROW = (
    "\n        <tr>"
    '\n          <th scope="row"><a href="{url}">{title}</a>{badge}</th>'
    '\n          <td data-label="{category_label}">{category}</td>'
    '\n          <td data-label="{date_label}">{date}</td>'
    '\n          <td data-label="{added_label}">{added}</td>'
    '\n          <td data-label="{status_label}">{status}{hidden}{form}</td>'
    "\n        </tr>\n      "
)
_DOCUMENT_TABLE = (
    '<div class="table-wrap">\n  <table class="table-stack">'
    '\n    <caption class="visually-hidden">{caption}</caption>'
    "\n    <thead><tr>"
    '\n      <th scope="col">{title_label}</th><th scope="col">{category_label}</th>'
    '\n      <th scope="col">{date_label}</th><th scope="col">{added_label}</th>'
    '\n      <th scope="col">{status_label}</th>'
    "\n    </tr></thead>\n    <tbody>\n      \n      {rows}\n    </tbody>\n  </table>\n</div>\n"
)


def document_table_html(documents, *, new, user):
    """``records/document_table.html`` written in Python from ``documents`` prepared by
    ``prepare_documents`` (tests/records/test_documents.py compares the two); for a care
    team's reader, with each document's ``confidential_form`` (``confidential_forms``)."""
    labels = {
        "category_label": _t("Category"),
        "date_label": _t("Date of care"),
        "added_label": _t("Added by"),
        "status_label": _t("Status"),
    }
    row_format = _with_labels(_DOCUMENT_ROW, **labels)
    badge = ' <span class="badge-new">' + _t("New", "item") + "</span>"
    hidden = " · " + _t("Hidden from professionals")
    available, replaced, processing = (
        _t("Available", "document status"),
        _t("Replaced by a corrected version"),
        _t("Processing…"),
    )
    withdrawn, day = _t("Withdrawn on %(date)s"), date_formatter("SHORT_DATE_FORMAT")
    rows = []
    for document in documents:
        if document.withdrawn_at:
            # What {% blocktranslate %} does: the date escaped, the sentence as translated.
            status = withdrawn % {"date": escaped(day(document.withdrawn_at))}
        elif document.replaced_by_id:
            status = replaced
        elif document.status == "processing":
            status = processing
        else:
            status = available
        rows.append(
            row_format.format(
                url=escaped(document.url),
                title=escaped(document.title),
                badge=badge if document.pk in new else "",
                category=escaped(document.category_label),
                date=escaped(document.care_date_text),
                added=escaped(document.added_by),
                status=status,
                hidden=hidden if document.hidden else "",
                form=getattr(document, "confidential_form", "") if user.is_clinician else "",
            )
        )
    table = _with_labels(_DOCUMENT_TABLE, caption=_t("Documents"), title_label=_t("Title"), **labels)
    return SafeString(table.format(rows="".join(rows)))


_OBSERVATION_TABLE = (
    '<div class="table-wrap">\n  <table class="table-stack">'
    "\n    <thead><tr>"
    '\n      <th scope="col">{test_label}</th><th scope="col">{value_label}</th>'
    '\n      <th scope="col">{range_label}</th><th scope="col">{flag_label}</th>'
    "\n    </tr></thead>\n    <tbody>\n      \n      {rows}\n    </tbody>\n  </table>\n</div>\n"
)


class ObservationTables:
    """A report's table of values, one report at a time (the patient's results page; with a
    "Correct" link on each value, a care team's record page), written in Python from the
    observations as they are read. The page's labels are translated once, and the cells a
    test's name, code, value, unit, range and flag make are written once per distinct set
    (the same tests come back in every report); each row adds its own links and correction
    (tests/records/test_records_pages_cost.py holds the tables equal to the template they
    replaced, for both readers)."""

    def __init__(self):
        labels = {"value_label": _t("Value"), "range_label": _t("Reference range"), "flag_label": _t("Flag")}
        self.labels = labels
        self.table_format = _with_labels(_OBSERVATION_TABLE, test_label=_t("Test"), **labels)
        self.corrected_on, self.day = _t("Corrected on %(date)s"), date_formatter("SHORT_DATE_FORMAT")
        self.correct_label = _t("Correct")
        self.history_url = url_by_pk("records:observation_history", as_html=True)
        self.correct_url = None  # looked up at the first table with "Correct" links
        self.number, self.flags, self.written = _Numbers(), labels_of(Observation.Flag.choices), {}

    def _cells(self, observation):
        """The row's text in four pieces, for its name, code, value, unit, range and flag:
        up to its link (with the flag's class), its name (escaped), from the link to its
        value and unit, and from its range to the end."""
        flag = observation.flag  # None: no range and no interpretation, nothing to say
        key = (flag, observation.name, observation.loinc, observation.value, observation.unit, observation.low,
               observation.high)  # fmt: skip
        cells = self.written.get(key)
        if cells is None:
            number, labels = self.number, self.labels
            flag_class, flag_text = _flag_class_and_label(flag, self.flags)
            name, unit = escaped(observation.name), escaped(observation.unit)
            if observation.low is not None or observation.high is not None:
                range_ = f"{number(observation.low) or '…'} – {number(observation.high) or '…'} {unit}"
            else:
                range_ = "—"
            cells = self.written[key] = (
                f'\n        <tr class="flag-{flag_class}">\n          <th scope="row"><a href="',
                name,
                f'">{name}</a> <small>LOINC {escaped(observation.loinc)}</small></th>'
                f'\n          <td data-label="{labels["value_label"]}">{number(observation.value)} {unit}',
                f'</td>\n          <td data-label="{labels["range_label"]}">{range_}</td>'
                f'\n          <td data-label="{labels["flag_label"]}"><span class="flag">{escaped(flag_text)}</span>'
                "</td>\n        </tr>\n      ",
            )
        return cells

    def __call__(self, observations, *, correct=False):
        """The table of ``observations``, each with a "Correct" link when ``correct``."""
        if correct and self.correct_url is None:
            self.correct_url = url_by_pk("records:correct_observation", as_html=True)
        rows = []
        for observation in observations:
            start, name, middle, end = self._cells(observation)
            corrected = correct_link = ""
            if observation.corrected_at:
                # What {% blocktranslate %} does: the date escaped, the sentence as translated.
                sentence = self.corrected_on % {"date": escaped(self.day(observation.corrected_at))}
                corrected = f'<br><small class="status">{sentence}</small>'
            if correct:
                correct_link = (
                    f'<br><small><a href="{self.correct_url(observation.pk)}">{self.correct_label}'
                    f'<span class="visually-hidden"> : {name}</span></a></small>'
                )
            url = self.history_url(observation.pk)
            rows.append(f"{start}{url}{middle}{corrected}{correct_link}{end}")
        return SafeString(self.table_format.format(rows="".join(rows)))


def prepare_prescriptions(prescriptions, *, correctable_teams=(), confidential_form=None):
    """Set on each of ``prescriptions`` what ``records/prescription_table.html`` shows:
    ``route_text``, ``start_text``, ``end_text`` ("—" for none); for a care team, on those
    its teams published (``correctable_teams``), ``confidential_form`` (from
    ``confidential_forms``) and, while it may still be corrected, ``stop_url`` and
    ``replace_url``. Returns them, as a list."""
    prescriptions = list(prescriptions)
    day, routes = date_formatter("SHORT_DATE_FORMAT"), labels_of(Prescription.Route.choices)
    stop_url = url_by_pk("records:stop_prescription") if correctable_teams else None
    replace_url = url_by_pk("records:replace_prescription") if correctable_teams else None
    for prescription in prescriptions:
        prescription.route_text = routes.get(prescription.route, prescription.route)
        prescription.start_text = day(prescription.start_date)
        prescription.end_text = day(prescription.end_date) or "—"
        prescription.stop_url = prescription.replace_url = prescription.confidential_form = ""
        if prescription.team_id in correctable_teams:
            prescription.confidential_form = confidential_form("prescription", prescription, prescription.medication)
            if prescription.is_correctable:
                prescription.stop_url = stop_url(prescription.pk)
                prescription.replace_url = replace_url(prescription.pk)
    return prescriptions


# Stand-ins for the kind, the id, the label, the form token and the page to come back to in
# the confidentiality form rendered once per page.
_KIND, _PK, _LABEL, _TOKEN, _BACK = "KIND-STAND-IN", 987654321, "LABEL-STAND-IN", "TOKEN-STAND-IN", "BACK-STAND-IN"


def confidential_forms(request):
    """A function of an item's kind ("document", "prescription", "lab_report"), the item
    and its label giving the care team's confidentiality form for it, as
    ``records/confidential_toggle.html`` renders it (the form, its link and its strings are
    the template's): the template is rendered once per page for each state instead of once
    per row; each form still has its own token (one form, one action), and comes back to
    this page, at the same place in its list."""
    template, back = get_template("records/confidential_toggle.html").template, request.get_full_path()
    context = {"kind": _KIND, "label": _LABEL, "csrf_token": csrf_token(request), "back": _BACK}
    patterns = {}
    for confidential in (False, True):
        html = template.render(Context({**context, "item": {"pk": _PK, "confidential": confidential}}))
        html = re.sub(f'(name="{FIELD}" value=")[^"]*', rf"\g<1>{_TOKEN}", html).replace("{", "{{").replace("}", "}}")
        stand_ins = ((_KIND, "{kind}"), (str(_PK), "{pk}"), (_LABEL, "{label}"), (_TOKEN, "{token}"), (_BACK, "{back}"))
        for stand_in, name in stand_ins:
            html = html.replace(stand_in, name)
        patterns[confidential] = html

    def form(kind, item, label):
        return format_html(
            patterns[bool(item.confidential)], kind=kind, pk=int(item.pk), label=label, token=uuid.uuid4(), back=back
        )

    return form


# A lab report on a results page, the patient's or a care team's: its heading (with "New"
# while it is news to the reader), the publishing team, for that team the confidentiality
# form, and the table of values, written in Python with each value escaped as the
# template escapes it (``portal.rows``): as a template, ten reports cost more than the
# page's queries.
REPORT = """<h{level} id="report-{pk}">{title} — {date}{new}</h{level}>
<p class="notice">{team}</p>
{form}
{table}
"""


def report_writer(request, correctable=(), *, new):
    """A function writing a report's ``REPORT`` from its values (``ObservationTables``,
    with "Correct" links and the confidentiality form where the report's team is one of
    ``correctable``, a care team's own); ``new``: the pks of the reports to mark new."""
    long_date, table = date_formatter("DATE_FORMAT"), ObservationTables()
    confidential_form = confidential_forms(request) if correctable else None
    new_badge = f' <span class="badge-new">{escaped(pgettext("item", "New"))}</span>'

    def write(report, values, *, level):
        mine = report.team_id in correctable
        return SafeString(  # every value escaped or already HTML
            REPORT.format(
                level=level,
                pk=int(report.pk),
                title=escaped(report.title),
                date=escaped(long_date(report.collected_on)),
                new=new_badge if report.pk in new else "",
                team=escaped(report.team.name),
                form=confidential_form("lab_report", report, report.title) if mine else "",
                table=table(values, correct=mine),
            )
        )

    return write
