"""The static HTML report: study cards with a finding and a headline figure, sweeps plotted against their varied
parameter, runs named by their parameters, every metric reachable, broken records listed, offline figures."""
import json
import shutil
from pathlib import Path

import pytest

from workbench.report import run_label, write_report
from workbench.results import save_figure, save_record


class _Fig:  # any object with to_json() is saved; the report reads it back with plotly
    def __init__(self, title="t"):
        self.title = title

    def to_json(self):
        return json.dumps({"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {"title": {"text": self.title}}})


def _sweep(root):
    """A BETA x SEED sweep of a notebook with 12 metrics, a finding, a headline figure and a table."""
    for beta in (0.0, 1.0, 5.0):
        for seed in (0, 1):
            run = root / "06_model_update_flips" / f"BETA={beta},SEED={seed}"
            metrics = {f"m{i:02d}": i for i in range(11)}
            metrics["focal/nfr"] = 0.04 / (1 + beta) + seed / 1000
            save_record(run, notebook="06_model_update_flips", parameters={"BETA": beta, "SEED": seed}, metrics=metrics,
                        extra={"finding": f"Focal distillation with beta {beta} lowers negative flips.",
                               "headline_metric": "focal/nfr", "headline_figure": "nfr_vs_error"},
                        tables={"scorecard": [{"model": "new", "nfr": 0.01, "verdict": "compatible"}]})
            save_figure(_Fig("other"), output_dir=run, name="a_first")
            save_figure(_Fig("headline"), output_dir=run, name="nfr_vs_error")


def test_index_lists_top_level_runs_and_formats_numbers(tmp_path):
    run = tmp_path / "nb" / "SEED=0"
    save_record(run, notebook="nb", parameters={"SEED": 0}, metrics={"n_rows": 38158.0, "auc": 0.123456})
    save_record(run / "sweep" / "eps=1", notebook="nb", metrics={"acc": 0.5})  # a point the notebook records itself
    save_figure(_Fig(), output_dir=run, name="bars")
    index = write_report(tmp_path).read_text()
    assert index.count("SEED=0/report.html") == 1 and "sweep" not in index
    assert "38,158" in index and "0.1235" in index and "nan" not in index
    page = (run / "report.html").read_text()
    assert "Plotly.newPlot" in page and "bars" in page


def test_cards_findings_sweep_figure_and_every_metric(tmp_path):
    _sweep(tmp_path)
    index = write_report(tmp_path).read_text()
    card = index[index.index("<div class='cards'>"):index.index("<h2 id=")]
    assert "Focal distillation with beta" in card and "6 run(s): 6 completed" in card
    assert '"text":"headline"' in card.replace(" ", "") and '"text":"other"' not in card.replace(" ", "")
    section = index[index.index("<h2 id="):]
    assert "focal\\u002fnfr against BETA" in section  # the sweep's figure: headline metric vs the varied parameter
    header = section[section.index("<table>"):section.index("</tr>")]
    assert header.index("focal/nfr") < header.index("m00") < header.index("m10") < header.index(">BETA<")  # metrics first
    for label in ("BETA=0.0, SEED=0", "BETA=5.0, SEED=1"):
        assert label in section  # runs named by their parameters in full
    page = (tmp_path / "06_model_update_flips" / "BETA=1.0,SEED=0" / "report.html").read_text()
    assert "table: scorecard" in page and "compatible" in page and "Finding." in page
    assert run_label({}) == "defaults"


def test_broken_records_are_listed_with_their_reason(tmp_path):
    save_record(tmp_path / "nb" / "good", notebook="nb", metrics={"auc": 0.5})
    (tmp_path / "nb" / "wrong_shape").mkdir()
    (tmp_path / "nb" / "wrong_shape" / "record.json").write_text(json.dumps({"status": "completed", "metrics": [1, 2]}))
    (tmp_path / "nb" / "truncated").mkdir()
    (tmp_path / "nb" / "truncated" / "record.json").write_text('{"status": "compl')
    index = write_report(tmp_path).read_text()
    assert "2 broken record(s)" in index and "Broken records" in index
    assert "&#x27;metrics&#x27; is a list" in index and "not valid JSON (truncated or corrupt)" in index
    assert "good/report.html" in index


# ------------------------------------------------------------------------------------------ in a real browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright; `make setup` installs it)")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; scripts/install_browser.sh, needs root)")
    return sync_playwright


@pytest.mark.slow
def test_index_in_a_real_browser_shows_cards_figures_and_metrics_first(tmp_path):
    sync_playwright = _browser_or_skip()
    _sweep(tmp_path)
    save_record(  # a second study with many parameters: its metrics must still come first on screen
        tmp_path / "03_federated_sampling" / "default", notebook="03_federated_sampling",
        parameters={f"PARAM_{i:02d}": "a_long_parameter_value" for i in range(14)},
        metrics={"activity/perplexity": 8.61, "uniform/perplexity": 9.05},
        extra={"finding": "Activity-based selection beats uniform."})
    index = write_report(tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(index.as_uri())
        page.wait_for_selector(".card .js-plotly-plot .main-svg", timeout=30_000)
        cards = page.locator(".card")
        assert cards.count() == 2
        assert cards.first.bounding_box()["y"] < 1000  # the cards open the page
        assert "Activity-based selection beats uniform." in page.inner_text(".cards")
        assert page.locator(".js-plotly-plot").count() >= 2  # headline figure + the sweep figure
        tables = page.locator("h2 + div.scroll table, h2 + div + div.scroll table").all()
        assert len(tables) == 2
        for table in tables:  # each study's first metric is on screen without scrolling sideways
            box = table.locator("th.metric").first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1400, "the first metric column starts off screen"
        last = page.locator("th.metric", has_text="m10")  # the 12th metric: reachable by scrolling the table
        last.scroll_into_view_if_needed()
        assert last.is_visible()
        shot = tmp_path / "index.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000
