"""Interactive panel of the DP study (notebook 01): pick epsilon and the clipping norm, see the noise the
accountant needs right away, and train the model privately with one click."""
from __future__ import annotations

import dataclasses
import html

import ipywidgets as widgets

from ..plots.common import history_figure
from ._display import show as show_in

__all__ = ["dp_panel", "schedule_html"]


def schedule_html(schedule: dict, *, delta: float) -> str:
    """One line of HTML describing a DP schedule (no computation).

    Examples
    --------
    >>> "sigma" in schedule_html({"noise_multiplier": 1.1, "sample_rate": 0.01, "steps": 10, "epsilon": 2.0}, delta=1e-5)
    True
    """
    return (f"noise multiplier sigma = <b>{schedule['noise_multiplier']:.3f}</b> · sample rate q = {schedule['sample_rate']:.4f} · "
            f"{schedule['steps']} steps · epsilon = {schedule['epsilon']:.3g} at delta = {delta:g}")


def dp_panel(model_fn, train_data, *, val=None, config, dp, epsilon_range=(0.25, 32.0), clip_range=(0.01, 10.0)) -> widgets.Widget:
    """Sliders for epsilon (log scale) and the clipping norm C, a Train button, and the resulting curves.

    Parameters
    ----------
    model_fn : callable
        Returns a fresh model for each training run.
    train_data, val : (X, y)
    config : workbench.training.TrainConfig
    dp : workbench.privacy.dp.DPConfig
        Defaults for delta, accountant, engine, sampling; the sliders start at its target epsilon (or 1)
        and clipping norm.

    Returns
    -------
    ipywidgets.VBox
        ``.runs`` holds the per-epoch histories of the runs trained so far. Moving a slider only recomputes the noise multiplier (milliseconds); training starts on the button,
        so batch runs never wait on the panel.
    """
    from ..privacy.dp import DPConfig, privacy_schedule, train

    eps0 = dp.target_epsilon if dp.target_epsilon is not None else 1.0
    eps = widgets.FloatLogSlider(value=eps0, base=10, min=float(_log10(epsilon_range[0])), max=float(_log10(epsilon_range[1])),
                                 step=0.05, description="epsilon", continuous_update=False)
    clip = widgets.FloatLogSlider(value=dp.max_grad_norm, base=10, min=float(_log10(clip_range[0])),
                                  max=float(_log10(clip_range[1])), step=0.05, description="clip norm C", continuous_update=False)
    button = widgets.Button(description="Train", button_style="primary", icon="play")
    info = widgets.HTML()
    out = widgets.Output()
    runs: dict[str, list] = {}
    n = len(train_data[1])

    def current() -> DPConfig:
        return dataclasses.replace(dp, target_epsilon=float(eps.value), noise_multiplier=None, max_grad_norm=float(clip.value))

    def refresh(*_):
        try:
            info.value = schedule_html(privacy_schedule(n, config=config, dp=current()), delta=dp.delta)
        except ValueError as err:
            info.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"

    def on_train(_):
        button.disabled = True
        try:
            cfg = current()
            res = train(model_fn(), train_data, config=config, dp=cfg, val=val, progress=False)
            runs[f"eps={cfg.target_epsilon:.2g}, C={cfg.max_grad_norm:.2g}"] = res.history.to_records()
            metric = "val_accuracy" if val is not None else "train_loss"
            show_in(out, history_figure(runs, metric=metric, title=f"{metric} per epoch (one line per run)"))
        finally:
            button.disabled = False

    eps.observe(refresh, names="value")
    clip.observe(refresh, names="value")
    button.on_click(on_train)
    refresh()
    panel = widgets.VBox([widgets.HBox([eps, clip, button]), info, out])
    panel.runs = runs  # histories of the runs trained from the panel, by label
    return panel


def _log10(x: float) -> float:
    import math

    return math.log10(x)
