"""``{% form_field form.name %}``: a bound field as every form lays it out (label, help,
errors, widget), written by ``portal.widgets.field_html``."""

from django import template

from portal.widgets import field_html

register = template.Library()
register.simple_tag(field_html, name="form_field")
