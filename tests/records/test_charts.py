"""records.charts.figure_html writes a trend chart as templates/records/trend.html did."""

import datetime
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from records import charts

# What templates/records/trend.html wrote, before figure_html: the markup the charts' styles
# and tests were made for.
TREND_INCLUDE = Template(
    """{% load translations l10n records_text %}{% if chart %}
<figure class="trend">
  <svg viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img" aria-labelledby="{{ chart_id }}-title" focusable="false">
    <title id="{{ chart_id }}-title">{{ chart_title }}</title>
    {% if chart.band %}<rect class="trend-band" x="{{ chart.left|unlocalize }}" y="{{ chart.band.y|unlocalize }}" width="{{ chart.plot_width|unlocalize }}" height="{{ chart.band.height|unlocalize }}"/>{% endif %}
    {% for tick in chart.ticks %}
      <line class="trend-grid" x1="{{ chart.left|unlocalize }}" y1="{{ tick.y|unlocalize }}" x2="{{ chart.right|unlocalize }}" y2="{{ tick.y|unlocalize }}"/>
      <text class="trend-label" text-anchor="end" dominant-baseline="middle" x="{{ chart.left|add:"-8"|unlocalize }}" y="{{ tick.y|unlocalize }}">{{ tick.value|measured }}</text>
    {% endfor %}
    <line class="trend-axis" x1="{{ chart.left|unlocalize }}" y1="{{ chart.axis_y|unlocalize }}" x2="{{ chart.right|unlocalize }}" y2="{{ chart.axis_y|unlocalize }}"/>
    <line class="trend-axis" x1="{{ chart.left|unlocalize }}" y1="{{ chart.top|unlocalize }}" x2="{{ chart.left|unlocalize }}" y2="{{ chart.axis_y|unlocalize }}"/>
    <text class="trend-label" x="{{ chart.left|unlocalize }}" y="{{ chart.date_y|unlocalize }}">{{ chart.first|date:"SHORT_DATE_FORMAT" }}</text>
    <text class="trend-label" text-anchor="end" x="{{ chart.right|unlocalize }}" y="{{ chart.date_y|unlocalize }}">{{ chart.last|date:"SHORT_DATE_FORMAT" }}</text>
    <polyline class="trend-line" points="{{ chart.polyline }}"/>
    {{ chart.dots_svg }}
  </svg>
  {% if chart.band or chart.out_of_range %}
    <ul class="trend-legend">
      {% if chart.band %}<li><span class="trend-swatch trend-swatch-band" aria-hidden="true"></span> {% blocktranslate with low=chart.band.low|measured high=chart.band.high|measured trimmed %}Reference range ({{ low }} – {{ high }}){% endblocktranslate %}</li>{% endif %}
      {% if chart.out_of_range %}<li><span class="trend-swatch trend-swatch-out" aria-hidden="true">▲▼</span> {% translate "Outside the reference range (above, below)" %}</li>{% endif %}
    </ul>
  {% endif %}
  <figcaption>{% translate "The values are also in the table." %}</figcaption>
</figure>
{% endif %}
"""
)
DAY = datetime.timedelta(days=1)
START = datetime.date(2025, 1, 1)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize(
    ("values", "low", "high"),
    [
        ([Decimal("5.4"), Decimal("6.2"), Decimal("4.8")], Decimal("4.0"), Decimal("6.0")),  # band, one above
        ([Decimal("0.004"), Decimal("0.012")], None, Decimal("0.01")),  # a limit alone, small decimals
        ([Decimal("-2.5"), Decimal("3"), Decimal("1000.25")], None, None),  # no range
        ([Decimal("7")], Decimal("1"), Decimal("9")),  # one value
        ([Decimal("7"), Decimal("7")], None, None),  # flat
        ([], None, None),  # no chart
    ],
)
def test_the_figure_reads_as_the_include_wrote_it(values, low, high, language):
    points = [(START + DAY * 40 * i, value) for i, value in enumerate(values)]
    chart = charts.trend(points, low=low, high=high)
    with translation.override(language):
        for title, chart_id in (("Trend of <b>Glucose</b> & co", "history"), ("Poids", "weight")):
            expected = TREND_INCLUDE.render(Context({"chart": chart, "chart_id": chart_id, "chart_title": title}))
            assert charts.figure_html(chart, chart_id, title) == expected
    assert ("<figure" in expected) is bool(values)
