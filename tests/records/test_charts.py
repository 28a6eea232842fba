"""records.charts.figure_html writes a trend chart as templates/records/trend.html did."""

import datetime
import random
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation
from django.utils.safestring import mark_safe

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


def dots_svg_as_it_was(dots):
    """The chart's points (a polygon outside the range, else a circle), written in one
    pass: a chart has up to a hundred points. The coordinates print as ``|unlocalize``
    prints them (and as the polyline has them): a float rounded to 0.1, never in
    exponent form."""
    shapes = []
    for dot in dots:
        if dot["marker"]:
            shape = f'<polygon class="trend-dot trend-dot-{dot["side"]}" points="{dot["marker"]}"/>'
        else:
            shape = f'<circle class="trend-dot" cx="{dot["x"]}" cy="{dot["y"]}" r="5"/>'
        shapes.append(f"\n      {shape}\n    ")
    return mark_safe("".join(shapes))  # noqa: S308 (numbers and the side's name, "high" or "low", only)


def trend_as_it_was(points, low=None, high=None):
    """records.charts.trend before it worked out each distinct value once."""
    if not points:
        return None
    values = [Decimal(v) for _, v in points] + [Decimal(x) for x in (low, high) if x is not None]
    vmin, vmax = min(values), max(values)
    if vmin == vmax:
        vmin, vmax = vmin - 1, vmax + 1
    step = charts.nice_step(float(vmax - vmin))
    # The axis runs from the round tick below the lowest value to the one above the highest.
    vmin = (vmin / step).to_integral_value(rounding="ROUND_FLOOR") * step
    vmax = (vmax / step).to_integral_value(rounding="ROUND_CEILING") * step
    days = [(d - points[0][0]).days for d, _ in points]
    last = max(days[-1], 1)
    bottom = charts.HEIGHT - charts.BOTTOM

    def x(day):
        return round(charts.LEFT + (charts.WIDTH - charts.LEFT - charts.RIGHT) * day / last, 1)

    def y(value):
        return round(bottom - (bottom - charts.TOP) * float((Decimal(value) - vmin) / (vmax - vmin)), 1)

    def side(value):
        if high is not None and Decimal(value) > Decimal(high):
            return "high"
        if low is not None and Decimal(value) < Decimal(low):
            return "low"
        return None

    dots = []
    for day, (d, v) in zip(days, points, strict=True):
        dot = {"x": x(day), "y": y(v), "date": d, "value": v, "side": side(v)}
        dot["marker"] = charts.marker(dot["x"], dot["y"], dot["side"])
        dots.append(dot)
    count = int((vmax - vmin) / step)
    ticks = [{"y": y(vmin + i * step), "value": vmin + i * step} for i in range(count + 1)]
    band = None
    if low is not None and high is not None:
        band = {"y": y(high), "height": round(y(low) - y(high), 1), "low": low, "high": high}
    return {
        "width": charts.WIDTH,
        "height": charts.HEIGHT,
        "left": charts.LEFT,
        "right": charts.WIDTH - charts.RIGHT,
        "top": charts.TOP,
        "plot_width": charts.WIDTH - charts.LEFT - charts.RIGHT,
        "polyline": " ".join(f"{dot['x']},{dot['y']}" for dot in dots),
        "dots": dots,
        "dots_svg": dots_svg_as_it_was(dots),
        "band": band,
        "ticks": ticks,
        "axis_y": bottom,
        "date_y": charts.HEIGHT - 10,
        "out_of_range": any(dot["side"] for dot in dots),
        "first": points[0][0],
        "last": points[-1][0],
    }


@pytest.mark.parametrize("seed", range(40))
def test_a_trend_is_placed_as_it_was_before_each_value_was_placed_once(seed):
    """``trend`` works out each distinct value's height and side once: the chart is the one
    it drew before, point for point (heights, sides, markers, ticks, band, polyline), for
    series of repeated and varied values, with and without a range, negative, tiny and
    large, given as Decimals, ints or floats."""
    rnd = random.Random(seed)  # noqa: S311 (test data)
    scale = rnd.choice([Decimal("0.001"), Decimal("0.1"), Decimal("1"), Decimal("25"), Decimal("1000")])
    pool = [Decimal(rnd.randint(-50, 150)) * scale / 10 for _ in range(rnd.choice([1, 2, 5, 100]))]
    values = [rnd.choice(pool) for _ in range(rnd.randint(1, 100))]
    if seed % 5 == 0:
        values = [int(value) if seed % 2 else float(value) for value in values]
    low, high = sorted(rnd.sample(pool, 2)) if len(pool) > 1 else (None, None)
    low, high = rnd.choice([(low, high), (None, high), (low, None), (None, None)])
    points = [(START + DAY * rnd.randint(0, 3) * i, value) for i, value in enumerate(values)]
    points.sort(key=lambda point: point[0])
    # Each point's own dict is no longer kept: the figure is written from the rest.
    before = {key: value for key, value in trend_as_it_was(points, low=low, high=high).items() if key != "dots"}
    assert charts.trend(points, low=low, high=high) == before
