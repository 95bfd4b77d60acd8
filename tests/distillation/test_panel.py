"""Notebook 08's figures and side-by-side panel, driven in Python (no front end)."""
import pandas as pd
import pytest

from workbench.plots.distillation import continuations_html, gap_figure
from workbench.widgets.distillation import continuations_panel


@pytest.fixture
def tables():
    rows = []
    for model in ("teacher", "distilled"):
        for pid, job in ((0, "chemist"), (1, "baker")):
            for gender, who in (("female", "sister"), ("male", "brother")):
                rows.append({"model": model, "pair_id": pid, "profession": job, "gender": gender,
                             "prompt": f"My {who} is a {job} who", "continuation": f"{model} text {pid} {gender}",
                             "positivity": 0.5})
    gaps = pd.DataFrame({"model": ["teacher", "distilled"] * 2, "measure": ["sentiment_gap"] * 2 + ["own_gender_gap"] * 2,
                         "gap": [0.1, 0.2, 0.0, -0.1], "low": [0.0, 0.1, -0.1, -0.2], "high": [0.2, 0.3, 0.1, 0.0]})
    return pd.DataFrame(rows), gaps


def test_table_shows_every_model_for_the_chosen_pair(tables):
    html = continuations_html(tables[0], pair_id=1)
    assert html.count("<tr>") == 3 and "teacher text 1 male" in html and "text 0" not in html
    with pytest.raises(ValueError, match="accepted values are \\[0, 1\\]"):
        continuations_html(tables[0], pair_id=7)


def test_gap_figure_error_bars_are_the_interval(tables):
    fig = gap_figure(tables[1], measure="own_gender_gap")
    assert list(fig.data[0].y) == [0.0, -0.1]
    assert [round(v, 6) for v in fig.data[0].error_y.array] == [0.1, 0.1]


def test_panel_redraws_on_the_dropdowns(tables):
    panel = continuations_panel(*tables, pair_id=0)
    controls, table, figure = panel.children
    pick, measure = controls.children
    first = table.outputs[0]["data"]["text/html"]
    assert "text 0 female" in first
    pick.value = 1
    assert "text 1 female" in table.outputs[0]["data"]["text/html"]
    measure.value = "own_gender_gap"
    assert "own_gender_gap" in str(figure.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["yaxis"])
    with pytest.raises(ValueError, match="'pair_id' parameter of continuations_panel"):
        continuations_panel(*tables, pair_id=5)
