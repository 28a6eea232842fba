"""portal.rows: what a list page works out once per page writes what the template's own
filters write."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.template.defaultfilters import date as date_filter
from django.urls import include, path
from django.utils import timezone, translation
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from portal import rows

UTC = datetime.UTC
VALUES = [
    datetime.datetime(2026, 1, 5, 8, 3, 9, 120, tzinfo=UTC),  # winter
    datetime.datetime(2026, 7, 14, 23, 59, tzinfo=UTC),  # summer, the next day in Paris
    datetime.datetime(2026, 3, 29, 0, 59, tzinfo=UTC),  # the hour before the clock moves forward
    datetime.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # and after
    datetime.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the hour the clock moves back repeats
    datetime.datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime.datetime(2026, 12, 31, 12, 0, tzinfo=ZoneInfo("America/New_York")),
    datetime.datetime(999, 2, 3, 4, 5, tzinfo=UTC),  # a year of three digits
    datetime.datetime(2026, 2, 3, 4, 5),  # naive: shown as it is
    datetime.date(2026, 2, 3),
    datetime.date(999, 12, 31),  # a date, a year of three digits
    *(datetime.date(2026, month, month) for month in range(1, 13)),  # every month, every day of the week
    None,
]
FORMATS = [
    "SHORT_DATETIME_FORMAT",
    "DATETIME_FORMAT",
    "SHORT_DATE_FORMAT",
    "DATE_FORMAT",
    "TIME_FORMAT",
    "c",
    r"j n G \Y Y {d} {{m}} H:i:s",
    "N j, Y, P",
    "y e O T Z I",
    "d/m/Y",
    r"j.n.Y \d",  # a date of numbers and an escaped letter
    "d<m>Y & H:i",  # numbers, and text to escape in HTML
    "j F <Y>",
    "l j F, H:i",  # names of the day and of the month (the dashboard's appointments)
    "D d M Y, b E N",  # every other name
    "N j, Y",
    "l <D> & F {M}",  # names, and text to escape in HTML and in a template
]


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("format_name", FORMATS)
def test_date_formatter_writes_what_the_date_filter_writes(language, format_name):
    with translation.override(language):
        formatted = rows.date_formatter(format_name)
        for value in VALUES:
            if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
                try:
                    expected = date_filter(value, format_name)
                except TypeError:  # a time of a date: Django's error, from both
                    with pytest.raises(TypeError):
                        formatted(value)
                    continue
            else:
                expected = date_filter(timezone.template_localtime(value), format_name)
            assert formatted(value) == expected, (format_name, value)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("format_name", FORMATS)
def test_date_formatter_as_html_writes_what_an_autoescaped_date_filter_writes(language, format_name):
    """``as_html``: the format's own text escaped once, the values as they are (digits)."""
    template = Template("{{ value|date:format_name }}")
    with translation.override(language):
        formatted = rows.date_formatter(format_name, as_html=True)
        for value in VALUES:
            if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
                try:
                    expected = template.render(Context({"value": value, "format_name": format_name}))
                except TypeError:
                    continue
            else:
                local = timezone.template_localtime(value)
                expected = template.render(Context({"value": local, "format_name": format_name}))
            assert formatted(value) == expected, (format_name, value)


@pytest.mark.parametrize(
    "value", ["", "plain", "<b>Ann & « co »</b>", "\"quoted\" 'single'", "&amp; twice", mark_safe("<i>safe</i>")]
)
def test_escaped_writes_what_an_autoescaped_variable_writes(value):
    assert rows.escaped(value) == Template("{{ value }}").render(Context({"value": value}))
    assert rows.escaped(value) == conditional_escape(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "one line",
        "two\nlines",
        "windows\r\nlines\r\n\r\nand a paragraph",
        "old mac\rline\r\rparagraph",
        "three\n\n\nbreaks, then\n\n\n\n\nfive",
        "\n\nleading and trailing\n\n",
        "<script>alert(1)</script> & « guillemets » \"quoted\" 'single'",
        "&amp; twice &lt;b&gt;",
        "tab\tand unicode \u2028 separator\u2029 paragraph",
        "   spaces   \n   ",
    ],
)
def test_paragraphs_write_what_an_autoescaped_linebreaks_filter_writes(text):
    assert rows.paragraphs(text) == Template("{{ text|linebreaks }}").render(Context({"text": text}))


def test_url_by_pk_writes_what_reverse_gives_under_any_script_prefix():
    """The route is reversed once per URLconf and script prefix: Carnet served below a
    path has its rows' links below it too."""
    from django.urls import reverse, set_script_prefix

    for name in ("records:document", "messaging:conversation", "careteams:patient_detail"):
        assert [rows.url_by_pk(name)(pk) for pk in (1, 42, "7")] == [reverse(name, args=[pk]) for pk in (1, 42, 7)]
    set_script_prefix("/carnet/")
    try:
        assert rows.url_by_pk("records:document")(5) == reverse("records:document", args=[5])
        assert rows.url_by_pk("records:document")(5).startswith("/carnet/")
    finally:
        set_script_prefix("/")
    # As HTML: what an autoescaped {{ url }} writes, under a prefix with text to escape too.
    template = Template("{{ url }}")
    for prefix in ("/", "/a&b/"):
        set_script_prefix(prefix)
        try:
            for name in ("records:document", "messaging:conversation", "support:account"):
                expected = template.render(Context({"url": reverse(name, args=[42])}))
                assert rows.url_by_pk(name, as_html=True)(42) == expected
                assert prefix == "/" or expected.startswith("/a&amp;b/")
        finally:
            set_script_prefix("/")
    assert not rows.url_by_pk("records:document")(5).startswith("/carnet/")


# Another URLconf (tests/portal/test_rows.py's own), where the documents live elsewhere.
urlpatterns = [
    path("ailleurs/", include(([path("documents/<int:pk>/", lambda request, pk: None, name="document")], "records")))
]


def test_url_by_pk_follows_another_urlconf(settings):
    assert rows.url_by_pk("records:document")(5) == "/documents/5/"
    settings.ROOT_URLCONF = "tests.portal.test_rows"
    assert rows.url_by_pk("records:document")(5) == "/ailleurs/documents/5/"
