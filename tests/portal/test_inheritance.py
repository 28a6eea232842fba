"""{% extends %} (portal.templatetags.inheritance): what Django's own writes, whatever the
depth of the inheritance, ``block.super``, a parent named by a variable or given as a
template, render after render."""

from django.template import Context, Engine
from django.template.loader import get_template

from portal.templatetags.inheritance import ExtendsOnceNode

TEMPLATES = {
    "root.html": "<html>{% block head %}<title>{% block title %}Root{% endblock %}</title>{% endblock %}"
    "{% if show %}{% block main %}root main {{ who }}{% endblock %}{% endif %}"
    "{% for i in items %}{% block loop %}[{{ i }}]{% endblock %}{% endfor %}</html>",
    "middle.html": "{% extends 'root.html' %}{% block title %}Middle · {{ block.super }}{% endblock %}"
    "{% block main %}middle {{ block.super }}{% block inner %}inner{% endblock %}{% endblock %}",
    "leaf.html": "  {% extends 'middle.html' %}{% block inner %}leaf {{ block.super }} {{ who }}{% endblock %}"
    "{% block loop %}<{{ i }}>{% endblock %}",
    "by_variable.html": "{% extends parent %}{% block title %}{{ block.super }}!{% endblock %}",
    "alone.html": "{% block title %}alone{% endblock %}",
}


def engines():
    loaders = [("django.template.loaders.locmem.Loader", TEMPLATES)]
    mine = Engine(loaders=loaders, builtins=["portal.templatetags.inheritance"])
    return Engine(loaders=loaders), mine


def test_every_inheritance_renders_as_djangos():
    django, mine = engines()
    contexts = [
        {"show": True, "who": "<Léa>", "items": [1, 2]},
        {"show": False, "who": "x", "items": []},
        {"show": True, "who": "y", "items": [3], "parent": "middle.html"},
    ]
    for _ in range(2):  # once the blocks are kept, again
        for name in ("root.html", "middle.html", "leaf.html", "alone.html"):
            for values in contexts:
                expected = django.get_template(name).render(Context(values))
                assert mine.get_template(name).render(Context(values)) == expected, (name, values)
        for parent in ("root.html", "leaf.html"):
            for given in (parent, mine.get_template(parent)):  # a name, or the template itself
                values = {"parent": given, "show": True, "who": "z", "items": [1]}
                expected = django.get_template("by_variable.html").render(Context({**values, "parent": parent}))
                assert mine.get_template("by_variable.html").render(Context(values)) == expected
    assert isinstance(mine.get_template("leaf.html").nodelist[1], ExtendsOnceNode)


def test_the_projects_templates_use_it():
    assert any(isinstance(node, ExtendsOnceNode) for node in get_template("portal/trust/page.html").template.nodelist)
