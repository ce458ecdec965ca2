"""The SVG charts: geometry inside the plot, tooltips and a table with the exact numbers."""

from datetime import UTC, datetime

from django.template import Context, Template

from edu_dl.web.charts import bar_chart, line_chart, number


def test_a_line_chart_places_points_inside_the_plot_and_tells_their_values():
    # Given two series of mastery over three days
    days = [datetime(2026, 3, day, tzinfo=UTC) for day in (1, 2, 3)]
    chart = line_chart(
        title="Mastery",
        series=[
            ("Fractions", list(zip(days, [0.2, 0.5, 0.9], strict=True))),
            ("Division", [(days[1], 0.4)]),
        ],
        x_label="Date",
        y_label="Mastery",
    )
    # Then every point lies in the plot, the lowest value lowest, and the table has every day
    fractions = chart.series[0].points
    assert all(chart.plot_left <= p.x <= chart.plot_right for p in fractions)
    assert all(chart.plot_top <= p.y <= chart.plot_bottom for p in fractions)
    assert fractions[0].y > fractions[1].y > fractions[2].y
    assert fractions[2].title == "Fractions: 90% (Date 2026-03-03 00:00)"
    assert chart.table_header == ["Date", "Fractions", "Division"]
    assert chart.table_rows == [
        ["2026-03-01 00:00", "20%", ""],
        ["2026-03-02 00:00", "50%", "40%"],
        ["2026-03-03 00:00", "90%", ""],
    ]
    assert [tick.text for tick in chart.y_ticks] == ["0%", "25%", "50%", "75%", "100%"]


def test_a_line_chart_leaves_out_values_that_are_not_numbers():
    chart = line_chart(
        title="Loss",
        series=[("loss", [(1, 0.9), (2, float("nan")), (3, None), (4, 0.3)])],
        x_label="Epoch",
        y_label="Loss",
        y_range=None,
        y_format=number,
    )
    assert [point.x_text for point in chart.series[0].points] == ["1", "4"]


def test_a_bar_chart_is_drawn_with_escaped_labels_and_a_table():
    # Given a distribution whose label carries markup
    chart = bar_chart(
        title="Scores", bars=[("0", 3), ("<b>1</b>", 5)], x_label="Score", y_label="Answers"
    )
    # When it is drawn by the {% chart %} tag
    html = Template("{% load edu_dl_charts %}{% chart chart %}").render(Context({"chart": chart}))
    # Then the bars carry their values, the label is escaped, and the table repeats the numbers
    assert chart.bars[1].height > chart.bars[0].height
    assert "<title>Score &lt;b&gt;1&lt;/b&gt;: 5</title>" in html
    assert "<b>1</b>" not in html
    assert '<th scope="row">0</th><td>3</td>' in html


def test_an_empty_chart_says_so():
    chart = line_chart(title="Mastery", series=[("Fractions", [])], x_label="Date", y_label="%")
    html = Template("{% load edu_dl_charts %}{% chart chart %}").render(Context({"chart": chart}))
    assert "No data to draw yet." in html
    assert "<svg" not in html
