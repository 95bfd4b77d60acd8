"""The static HTML report: one row per run, nested sweep records kept out of the index, offline figures."""
import json

from workbench.report import write_report
from workbench.results import save_figure, save_record


class _Fig:  # any object with to_json() is saved; the report reads it back with plotly
    def to_json(self):
        return json.dumps({"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {"title": {"text": "t"}}})


def test_index_lists_top_level_runs_and_formats_numbers(tmp_path):
    run = tmp_path / "nb" / "SEED=0"
    save_record(run, notebook="nb", metrics={"n_rows": 38158.0, "auc": 0.123456})
    save_record(run / "sweep" / "eps=1", notebook="nb", metrics={"acc": 0.5})  # a point the notebook records itself
    save_figure(_Fig(), output_dir=run, name="bars")
    index = write_report(tmp_path).read_text()
    assert index.count("report.html") == 1
    assert "38,158" in index and "0.1235" in index and "nan" not in index
    page = (run / "report.html").read_text()
    assert "Plotly.newPlot" in page and "bars" in page
