"""One ROC/AUC for the workbench, and no import cycle between the fairness modules."""
import ast
from pathlib import Path

import workbench.fairness as fairness_pkg
from workbench import metrics
from workbench.fairness import evaluation_corpus, groups

FAIRNESS = Path(fairness_pkg.__file__).parent


def _imported_modules(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_group_metrics_use_the_one_roc_auc():
    assert groups.roc_auc is metrics.roc_auc
    assert groups.UndefinedMetricWarning is metrics.UndefinedMetricWarning
    assert "def roc_auc" not in (FAIRNESS / "groups.py").read_text()


def test_counterfactual_and_evaluation_corpus_do_not_import_each_other():
    cf = _imported_modules(FAIRNESS / "counterfactual.py")
    ec = _imported_modules(FAIRNESS / "evaluation_corpus.py")
    assert not {".evaluation_corpus", "workbench.fairness.evaluation_corpus"} & cf
    assert not {".counterfactual", "workbench.fairness.counterfactual"} & ec
    # the shared word lists live in one place, and the old public name still works
    assert evaluation_corpus.NAMES[("african_american", "female")][0] == "Ebony"
