"""portal.prepared: a query's SQL kept per shape answers exactly as the ORM would, and a
builder whose values change the SQL (or are computed with) is never kept."""

import datetime

import pytest
from django.db import connection
from django.db.models import Count, Value
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts.models import Patient, Representation
from portal.prepared import prepared
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


@prepared
def by_pk(pk):
    return Patient.objects.filter(pk=pk).values_list("pk", "last_name")


@prepared
def born_between(start, end, *, descending):
    rows = Patient.objects.filter(birth_date__gte=start, birth_date__lt=end)
    return rows.order_by("-birth_date" if descending else "birth_date", "pk")


@prepared
def representations_in_force(patient_id, now):
    return Representation.objects.filter(patient=patient_id, starts_at__lte=now, ended_at__isnull=True).select_related(
        "representative", "patient"
    )


@prepared
def name_starts(prefix):
    return Patient.objects.filter(last_name__startswith=prefix)  # LIKE 'prefix%': the value is rewritten


@prepared
def next_pk(pk):
    return Patient.objects.filter(pk=pk + 1)  # computed with: the stand-ins would be sent


@prepared
def limited(pk, size):
    return Patient.objects.filter(pk__gte=pk)[:size]  # a LIMIT is written into the SQL


def test_rows_are_the_orms_for_each_value():
    patients = PatientFactory.create_batch(3)
    for patient in patients:
        assert by_pk(patient.pk) == [(patient.pk, patient.last_name)]
    assert by_pk(-1) == []
    assert by_pk.prepared_shapes() == {("default", (int,)): True}


def test_the_sql_is_compiled_once_then_only_sent():
    patient = PatientFactory()
    by_pk(patient.pk)
    with CaptureQueriesContext(connection) as sent:
        by_pk(patient.pk)
    assert len(sent.captured_queries) == 1
    calls = []
    original = by_pk.build
    by_pk.build = lambda *args, **kwargs: calls.append(args) or original(*args, **kwargs)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("django.conf.settings.PREPARED_QUERIES_CHECK", False)
            assert by_pk(patient.pk) == [(patient.pk, patient.last_name)]
    finally:
        by_pk.build = original
    assert calls == []  # not built again


def test_model_instances_dates_and_shapes():
    old = PatientFactory(birth_date=datetime.date(1950, 5, 1))
    young = PatientFactory(birth_date=datetime.date(1990, 5, 1))
    start, end = datetime.date(1900, 1, 1), datetime.date(2000, 1, 1)
    assert born_between(start, end, descending=True)[:2] == [young, old]
    assert born_between(start, end, descending=False)[:2] == [old, young]
    assert born_between(datetime.date(1960, 1, 1), end, descending=False) == [young]
    assert len(born_between.prepared_shapes()) == 2  # one per shape
    # Kept where dates are sent as they are (SQLite's are text: built at each call there).
    assert set(born_between.prepared_shapes().values()) == {connection.vendor == "postgresql"}


def test_select_related_rows_are_whole():
    parent = UserFactory(role="patient")
    child = PatientFactory()
    Representation.objects.create(patient=child, representative=parent, kind=Representation.Kind.PARENT)
    now = timezone.now()
    [found] = representations_in_force(child.pk, now)
    assert found.representative == parent and found.representative.email == parent.email
    assert found.patient == child
    assert representations_in_force(child.pk, now - datetime.timedelta(days=1)) == []
    assert representations_in_force(PatientFactory().pk, now) == []


@pytest.mark.parametrize(
    ("builder", "values"),
    [(name_starts, ("Dup",)), (next_pk, (1,)), (limited, (1, 5))],
    ids=["rewritten", "computed", "inlined"],
)
def test_a_value_the_sql_does_not_send_as_given_is_never_kept(builder, values):
    PatientFactory(last_name="Dupont")
    assert builder(*values) == list(builder.build(*values))
    assert set(builder.prepared_shapes().values()) == {False}


def test_other_kinds_of_value_are_built_each_time():
    patient = PatientFactory()
    assert by_pk(str(patient.pk)) == [(patient.pk, patient.last_name)]  # text: built as the ORM would
    with pytest.raises(ValueError):
        by_pk("not a number")


def test_the_check_catches_a_shape_the_key_does_not_hold(settings):
    """A builder that reads something besides its values and shape: the test suite's
    check fails at once instead of sending another query's SQL."""
    settings.PREPARED_QUERIES_CHECK = True
    ordering = ["pk"]

    @prepared
    def sneaky(pk):
        return Patient.objects.filter(pk__gte=pk).order_by(*ordering).annotate(one=Value(1))

    PatientFactory()
    sneaky(1)
    ordering[:] = ["-pk"]
    with pytest.raises(AssertionError, match="not the one these values build"):
        sneaky(1)


@prepared
def patient_and_login(pk):
    return Patient.objects.filter(pk=pk).select_related("user")


def test_the_columns_converters_are_looked_up_once_per_connection(monkeypatch):
    """At the next calls the rows are read with the converters kept for the connection
    (they were a tenth of a prepared query's cost): the same values, of the same types
    (SQLite's dates and datetimes are text that converters read)."""
    from django.db.models.sql.compiler import SQLCompiler

    patient = PatientFactory(birth_date=datetime.date(2016, 2, 29))
    [first] = patient_and_login(patient.pk)
    looked_up, look_up = [], SQLCompiler.get_converters
    monkeypatch.setattr(
        SQLCompiler, "get_converters", lambda self, expressions: looked_up.append(1) or look_up(self, expressions)
    )
    for _ in range(3):
        [again] = patient_and_login(patient.pk)
        assert (again.birth_date, again.user.date_joined, again.user.email) == (
            datetime.date(2016, 2, 29),
            patient.user.date_joined,
            patient.user.email,
        )
        assert type(again.user.date_joined) is datetime.datetime and again.user.date_joined.tzinfo is not None
    assert first == again and looked_up == []
    Patient.objects.filter(pk=patient.pk).values_list("pk").get()  # any other query: as the compiler does
    assert looked_up == [1]


@pytest.mark.django_db(transaction=True)
def test_a_query_prepared_in_one_thread_is_sent_on_another_threads_connection():
    """A web server's threads each have their own connection: the kept query is sent on
    the caller's."""
    import threading

    from django.db import connections

    first, second = PatientFactory(), PatientFactory()
    assert by_pk(first.pk) == [(first.pk, first.last_name)]  # prepared here
    found, errors = [], []

    def other_thread():
        try:
            found.append(by_pk(second.pk))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert not errors and found == [[(second.pk, second.last_name)]]


@prepared
def with_prefetch(pk):
    return Patient.objects.filter(pk=pk).prefetch_related("care_links")


def test_what_runs_after_the_query_is_never_kept():
    """A prefetch's queryset would keep the stand-ins: built at every call instead."""
    patient = PatientFactory()
    assert with_prefetch(patient.pk) == [patient]
    assert set(with_prefetch.prepared_shapes().values()) == {False}


def test_an_id_beyond_any_column_matches_nothing_as_the_orm_says():
    assert by_pk(2**70) == [] and by_pk(-(2**70)) == []


@prepared
def values_of(pk, *, kind):
    rows = Patient.objects.filter(pk__gte=pk).order_by("birth_date", "pk")
    return {
        "dict": lambda: rows.values("pk", "birth_date", "user__date_joined", "user__email"),
        "tuple": lambda: rows.values_list("pk", "birth_date", "user__date_joined"),
        "flat": lambda: rows.values_list("birth_date", flat=True),
        "named": lambda: rows.values_list("pk", "birth_date", "user__date_joined", named=True),
        "annotated": lambda: rows.annotate(links=Count("care_links"), label=Upper("last_name")).values(
            "label", "links", "pk"
        ),
        # Distinct rows ordered by a column they do not hold: the query selects it too.
        "distinct": lambda: rows.order_by("last_name", "pk").distinct().values_list("first_name", "pk"),
        "empty": lambda: rows.filter(last_name="").values_list("pk"),
    }[kind]()


@pytest.mark.parametrize("kind", ["dict", "tuple", "flat", "named", "annotated", "distinct", "empty"])
def test_values_rows_are_read_as_the_orm_reads_them(kind):
    """A values() or values_list() query is read straight from the cursor: the same rows,
    values of the same types (SQLite's dates and datetimes through their converters), the
    same shapes (dicts, tuples, single values, named tuples), the columns selected only
    to order distinct rows left out."""
    patients = [PatientFactory(birth_date=datetime.date(2016, 2, 29)), PatientFactory(), PatientFactory(user=None)]
    first = min(patient.pk for patient in patients)
    for _ in range(3):  # prepared at the first call, then only sent
        got, expected = values_of(first, kind=kind), list(values_of.build(first, kind=kind))
        assert got == expected
        assert [type(row) for row in got] == [type(row) for row in expected]
        for row, other in zip(got, expected, strict=True):
            values = row.values() if kind in ("dict", "annotated") else (row if kind != "flat" else [row])
            others = other.values() if kind in ("dict", "annotated") else (other if kind != "flat" else [other])
            assert [type(value) for value in values] == [type(value) for value in others]
        if kind == "named":
            assert [row._fields for row in got] == [row._fields for row in expected]
    key = ("default", (int,), ("kind", kind))
    assert values_of.prepared_shapes()[key] is True
    _iterable, _names, width = values_of._plans[key].shape  # read by the values' own path, not as a queryset
    assert (width is not None) == (kind == "distinct")
    assert kind == "empty" or len(got) == 3
