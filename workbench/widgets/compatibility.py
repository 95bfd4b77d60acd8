"""Interactive panels of the model-update studies.

``pc_panel``: pick alpha / beta / temperature, train a focal-distilled new model on click, see where it
lands on the NFR-vs-error plane, and browse the flipped images of any class.
``retrieval_panel``: pick a query model, a gallery model and a query image; see what comes back.

Panels only compose: training and metrics come from :mod:`workbench.compatibility`, figures from
:mod:`workbench.plots.compatibility`. Building a panel trains nothing, so notebooks run in batch.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["pc_panel", "retrieval_panel"]


def _show(out, *objs) -> None:
    from ._display import show

    show(out, *objs)


def pc_panel(
    train: tuple,
    test: tuple,
    *,
    old_model,
    scenario,
    images: np.ndarray,
    classes: Sequence[str],
    new_pred: np.ndarray,
    baselines: pd.DataFrame | None = None,
    tradeoff: pd.DataFrame | None = None,
    seed: int = 0,
    max_images: int = 24,
):
    """Panel: focal-distillation weights -> train -> summary, trade-off point and flipped images.

    Parameters
    ----------
    train, test : (X, y)
    old_model : torch module
    scenario : :class:`~workbench.compatibility.pc_training.UpdateScenario`
    images : array (N_test, H, W)
        Test images, for display.
    classes : class names
    new_pred : array (N_test,)
        Predictions of the new model shown before the first training click (e.g. the unconstrained one).
    baselines, tradeoff : DataFrames, optional
        Drawn on the NFR-vs-error plane under the panel's own runs.

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as w
    import torch

    from ..compatibility import flips
    from ..compatibility.pc_training import PCConfig, train_new_model
    from ..plots.compatibility import image_grid_figure, tradeoff_figure
    from ..training import predict

    X, y = train
    Xt, yt = test
    yt = np.asarray(yt)
    old_pred = predict(old_model, torch.as_tensor(np.asarray(Xt)).reshape(len(Xt), -1)).argmax(1).numpy()
    old_logits = predict(old_model, torch.as_tensor(np.asarray(X)).reshape(len(X), -1))
    state = {"pred": np.asarray(new_pred), "label": "initial new model", "runs": []}

    alpha = w.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.1, description="alpha")
    beta = w.FloatSlider(value=5.0, min=0.0, max=50.0, step=0.5, description="beta")
    temperature = w.FloatLogSlider(value=1.0, base=10, min=-0.5, max=1.5, step=0.05, description="temperature")
    button = w.Button(description="Train new model", button_style="primary", tooltip="train a focal-distilled new model")
    cls = w.Dropdown(options=[(f"{i}: {c}", i) for i, c in enumerate(classes)], value=0, description="class")
    kind = w.Dropdown(options=[("negative flips", "negative"), ("positive flips", "positive")], value="negative", description="show")
    status = w.HTML()
    out_plane, out_images = w.Output(), w.Output()

    def draw_plane():
        tbl = tradeoff if tradeoff is not None else pd.DataFrame(columns=["beta", "temperature", "error_new", "nfr"])
        base = baselines.copy() if baselines is not None else pd.DataFrame(columns=["error_new", "nfr"])
        for r in state["runs"]:
            base.loc[r["name"], ["error_new", "nfr"]] = [r["error_new"], r["nfr"]]
        _show(out_plane, tradeoff_figure(tbl, baselines=base, title="NFR vs error (your runs added as markers)"))

    def draw_images(*_):
        ex = flips.flipped_examples(yt, old_pred, state["pred"], kind=kind.value, cls=cls.value)
        shown = ex.head(max_images)
        titles = [f"old {classes[o]} / new {classes[n]}" for o, n in zip(shown["old"], shown["new"])]
        fig = image_grid_figure(images[shown["index"].to_numpy()], titles=titles, n_cols=6,
                                title=f"{state['label']}: {len(ex)} {kind.value} flips in class {classes[cls.value]}")
        _show(out_images, fig)

    def summary_html(s):
        return (f"<b>{state['label']}</b>: error old {s['error_old']:.2%}, new {s['error_new']:.2%}; "
                f"NFR {s['nfr']:.2%}, PFR {s['pfr']:.2%}, NFI {s['nfi']:.2f}")

    def on_train(_):
        button.disabled = True
        status.value = "training..."
        try:
            pc = PCConfig(method="focal_distillation", alpha=alpha.value, beta=beta.value, temperature=temperature.value)
            model = train_new_model(train, scenario=scenario, pc=pc, old_logits=old_logits, n_classes=len(classes), seed=seed + 1)
            state["pred"] = predict(model, torch.as_tensor(np.asarray(Xt)).reshape(len(Xt), -1)).argmax(1).numpy()
            state["label"] = f"α={alpha.value:g}, β={beta.value:g}, T={temperature.value:.2g}"
            s = flips.flip_summary(yt, old_pred, state["pred"])
            state["runs"].append({"name": state["label"], **s})
            status.value = summary_html(s)
            draw_plane()
            draw_images()
        finally:
            button.disabled = False

    button.on_click(on_train)
    cls.observe(draw_images, names="value")
    kind.observe(draw_images, names="value")
    status.value = summary_html(flips.flip_summary(yt, old_pred, state["pred"]))
    draw_plane()
    draw_images()
    return w.VBox([
        w.HTML("<h4>Focal distillation: choose the weights, train, compare</h4>"),
        w.HBox([alpha, beta, temperature, button]),
        status,
        out_plane,
        w.HBox([cls, kind]),
        out_images,
    ])


def retrieval_panel(
    models: Mapping[str, object],
    query: tuple,
    gallery: tuple,
    *,
    query_images: np.ndarray,
    gallery_images: np.ndarray,
    classes: Sequence[str],
    k: int = 8,
    similarity: str = "cosine",
):
    """Panel: query model x gallery model x query image -> the top-``k`` retrieved gallery images.

    Embeddings are computed once when the panel is built; changing a control only ranks
    (:func:`~workbench.compatibility.bct.rank_gallery`, by ``similarity``: "cosine" or "euclidean").

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as w

    from ..compatibility.bct import embed, rank_gallery, retrieval_metrics
    from ..plots.compatibility import retrieval_examples_figure

    names = list(models)
    fq = {n: embed(m, query[0]) for n, m in models.items()}
    fg = {n: embed(m, gallery[0]) for n, m in models.items()}
    ql, gl = np.asarray(query[1]), np.asarray(gallery[1])
    qm = w.Dropdown(options=names, value=names[-1], description="query model")
    gm = w.Dropdown(options=names, value=names[0], description="gallery model")
    qi = w.IntSlider(value=0, min=0, max=len(ql) - 1, description="query #")
    info, out = w.HTML(), w.Output()

    def draw(*_):
        a, b = fq[qm.value], fg[gm.value]
        if a.shape[1] != b.shape[1]:
            info.value = f"<b>{qm.value}</b> and <b>{gm.value}</b> embeddings have different sizes: they cannot be compared at all."
            _show(out)
            return
        m = retrieval_metrics(a, ql, b, gl, similarity=similarity)
        top = rank_gallery(a[qi.value], b, similarity=similarity, k=k)[0]
        correct = gl[top] == ql[qi.value]
        info.value = (f"query model <b>{qm.value}</b> vs gallery model <b>{gm.value}</b>: "
                      f"top-1 {m['top1']:.3f}, mAP {m['map']:.3f} over {m['n_queries']} queries. "
                      f"This query is a <b>{classes[ql[qi.value]]}</b>.")
        _show(out, retrieval_examples_figure(query_images[qi.value], gallery_images[top], correct=correct,
                                             title=f"top {k}: {int(correct.sum())} of the same class"))

    for c in (qm, gm, qi):
        c.observe(draw, names="value")
    draw()
    return w.VBox([w.HTML("<h4>Cross-model retrieval</h4>"), w.HBox([qm, gm]), qi, info, out])
