"""``{% url %}`` is portal.templatetags.urls's, which keeps each URL it reverses: it
writes what Django's tag writes, for any route, arguments, URLconf and script prefix."""

import pytest
from django.template import Context, Engine, engines
from django.urls import NoReverseMatch, include, path, set_script_prefix
from django.utils.functional import lazystr

from portal.templatetags.urls import KeptURLNode

SOURCES = [
    "{% url 'help' %}",
    '{% url "careteams:patient_detail" 12 %}',
    "{% url 'careteams:patient_detail' pk %}",
    "{% url 'careteams:patient_detail' pk=pk %}",
    "{% url 'careteams:patient_detail' lazy_pk %}",
    "{% url name pk %}",
    "{% url 'careteams:patient_detail' pk as link %}[{{ link }}]",
    "{% url 'no-such-route' as link %}[{{ link }}]",
    "{% url 'careteams:patient_detail' 'abc' as link %}[{{ link }}]",
]
CONTEXT = {"pk": 7, "lazy_pk": lazystr("8"), "name": "careteams:patient_detail"}


def _djangos(source):
    return Engine(dirs=[], app_dirs=False).from_string(source)


def _ours(source):
    return engines["django"].engine.from_string(source)


@pytest.mark.parametrize("source", SOURCES)
def test_each_form_writes_what_djangos_writes(source):
    expected = _djangos(source).render(Context(CONTEXT))
    ours = _ours(source)
    assert [ours.render(Context(CONTEXT)) for _ in range(3)] == [expected] * 3
    assert [type(node) for node in ours.nodelist if isinstance(node, KeptURLNode)] == [KeptURLNode]


def test_each_url_is_reversed_once(monkeypatch):
    from portal.templatetags import urls

    urls._reversed.cache_clear()
    reversed_, reverse = [], urls.reverse
    monkeypatch.setattr(urls, "reverse", lambda *args, **kwargs: reversed_.append(args) or reverse(*args, **kwargs))
    template = _ours("{% url 'careteams:patient_detail' pk %}")
    assert [template.render(Context({"pk": pk})) for pk in (1, 2, 1, 2, 1)] == [
        f"/care/patients/{pk}/" for pk in (1, 2, 1, 2, 1)
    ]
    assert len(reversed_) == 2


def test_a_route_that_does_not_reverse_raises_as_djangos_does():
    for source in ("{% url 'no-such-route' %}", "{% url 'careteams:patient_detail' 'abc' %}"):
        with pytest.raises(NoReverseMatch):
            _djangos(source).render(Context())
        with pytest.raises(NoReverseMatch):
            _ours(source).render(Context())


def test_another_script_prefix_or_urlconf_gives_its_own_url(settings):
    """Kept per script prefix (an app served under /carnet/) and URLconf (a test's)."""
    template = _ours("{% url 'careteams:patient_detail' 3 %}")
    before = template.render(Context())
    assert before == "/care/patients/3/"
    set_script_prefix("/carnet/")
    try:
        assert template.render(Context()) == "/carnet/care/patients/3/"
    finally:
        set_script_prefix("/")
    assert template.render(Context()) == before
    settings.ROOT_URLCONF = "tests.portal.test_url_tag"
    assert _ours("{% url 'careteams:patient_detail' 3 %}").render(Context()) == "/elsewhere/3/"


# This module is also a URLconf (for the test above).
def _view(request, pk):  # pragma: no cover (never served)
    raise AssertionError


urlpatterns = [path("elsewhere/<int:pk>/", _view, name="patient_detail")]
urlpatterns = [path("", include((urlpatterns, "careteams")))]
