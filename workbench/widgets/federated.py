"""Interactive panel for the federated study: pick a strategy, clients per round, alpha and local epochs, run.

Building the panel runs nothing; a run starts only when the user presses the button, so batch
execution (papermill) never blocks on it.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets

from workbench.federated.selection import STRATEGIES
from workbench.federated.simulation import FedConfig, FederatedData, run_fedavg
from workbench.federated.strategies import SERVER_STRATEGIES
from workbench.federated.tasks import make_model_fn
from workbench.plots.federated import participation_figure, rounds_figure
from workbench.widgets._display import show as show_in

__all__ = ["federated_panel", "study_panel"]


def federated_panel(data_fn: Callable[[float], FederatedData], *, rounds: int = 20, strategy: str = "activity",
                    clients_per_round: int = 10, alpha: float = 0.5, local_epochs: int = 1,
                    max_local_steps: int | None = 20, batch_size: int = 32, client_lr: float = 0.5,
                    seed: int = 0, uses_alpha: bool = True, server: str = "fedavg", simulator=None) -> widgets.Widget:
    """A panel that runs FedAvg with the chosen settings and overlays the accuracy curves of each run.

    Parameters
    ----------
    data_fn : callable
        ``alpha -> FederatedData`` (the Dirichlet concentration only matters for label-skew partitions;
        pass ``uses_alpha=False`` for natural partitions such as Shakespeare speakers).
    rounds, strategy, clients_per_round, alpha, local_epochs, max_local_steps, batch_size, client_lr, seed, server
        Starting values / fixed settings of the runs (``server``: the server step, e.g. ``"fedadam"``).
    simulator : FedAvgSimulator subclass, optional
        Runs the rounds (e.g. :class:`~workbench.federated.batched.BatchedSimulator`; default: the per-device loop).

    Returns
    -------
    ipywidgets.Widget
        Controls, a live accuracy-vs-round figure (one line per run) and a participation figure.
    """
    strategy_w = widgets.Dropdown(options=sorted(STRATEGIES), value=strategy, description="strategy")
    server_w = widgets.Dropdown(options=sorted(SERVER_STRATEGIES), value=server, description="server")
    k_w = widgets.IntSlider(value=clients_per_round, min=1, max=50, description="clients/round")
    alpha_w = widgets.FloatLogSlider(value=alpha, base=10, min=-2, max=3, step=0.25, description="alpha",
                                     disabled=not uses_alpha)
    epochs_w = widgets.IntSlider(value=local_epochs, min=1, max=5, description="local epochs")
    button = widgets.Button(description="Run FedAvg", button_style="primary", icon="play")
    clear = widgets.Button(description="Clear")
    status = widgets.HTML("Press <b>Run FedAvg</b> to train; each run adds a line.")
    curves_out, who_out = widgets.Output(), widgets.Output()
    runs: dict[str, list[dict]] = {}
    cache: dict[float, FederatedData] = {}

    def draw_curves():
        fig = rounds_figure(runs, metric="test_accuracy", title="test accuracy vs round (one line per run)")
        show_in(curves_out, fig)

    def on_run(_):
        button.disabled = True
        try:
            a = float(alpha_w.value) if uses_alpha else 0.0
            if a not in cache:
                status.value = "building the data..."
                cache[a] = data_fn(a)
            data = cache[a]
            k = min(k_w.value, int((data.train.sizes > 0).sum()))
            cfg = FedConfig(rounds=rounds, clients_per_round=k, strategy=strategy_w.value, local_epochs=epochs_w.value,
                            max_local_steps=max_local_steps, batch_size=batch_size, client_lr=client_lr,
                            eval_every=max(1, rounds // 10), seed=seed, server=server_w.value)
            name = f"{strategy_w.value}, {server_w.value}, k={k}, E={epochs_w.value}" + (f", alpha={a:g}" if uses_alpha else "")
            runs[name] = []

            def live(row):
                status.value = f"round {row['round']}/{rounds}"
                if "test_accuracy" in row:
                    runs[name].append({"round": row["round"], "test_accuracy": row["test_accuracy"]})
                    draw_curves()

            res = run_fedavg(data, model_fn=make_model_fn(data), config=cfg, progress=False, callback=live,
                             simulator=simulator)
            show_in(who_out, participation_figure({name: res.participation}, data.train.sizes,
                                                  title="participation vs activity (last run)"))
            status.value = (f"done: accuracy {res.final['test_accuracy']:.3f}, "
                            f"{res.final['bytes_total'] / 1e6:.1f} MB communicated, {res.seconds:.1f} s")
        except Exception as exc:  # show the error in the panel instead of losing it in a callback
            status.value = f"<span style='color:red'>error: {exc}</span>"
        finally:
            button.disabled = False

    def on_clear(_):
        runs.clear()
        draw_curves()

    button.on_click(on_run)
    clear.on_click(on_clear)
    controls = widgets.VBox([widgets.HBox([strategy_w, server_w, k_w]), widgets.HBox([alpha_w, epochs_w]),
                             widgets.HBox([button, clear, status])])
    return widgets.VBox([controls, curves_out, who_out])


def study_panel(config, data: FederatedData) -> widgets.Widget:
    """:func:`federated_panel` started from a :class:`~workbench.federated.studies.FedStudyConfig` and its data
    (the tweets task rebuilds its devices for the alpha picked in the panel)."""
    import dataclasses

    from workbench.federated.studies import load_study_data

    tweets = config.task == "tweets"
    data_fn = (lambda a: load_study_data(dataclasses.replace(config, alpha=a))) if tweets else (lambda a: data)
    return federated_panel(data_fn, rounds=config.rounds, clients_per_round=config.clients_per_round, alpha=config.alpha,
                           local_epochs=config.local_epochs, max_local_steps=config.max_local_steps,
                           batch_size=config.batch_size, client_lr=config.client_lr, seed=config.seed, uses_alpha=tweets,
                           strategy="activity" if "activity" in config.strategies else config.strategies[0],
                           server=config.server, simulator=config.simulator)
