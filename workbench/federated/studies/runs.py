"""Notebook 03's data and its main comparison: the devices, the centralized baseline, every strategy in the static
and continual settings and on shuffled devices (:func:`selection_study`), and light vs heavy users."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..partition import shuffled_like
from ..simulation import FederatedData, FedResult, run_fedavg, train_centralized
from ..users import activity_groups
from .config import SETTINGS, FedStudyConfig

__all__ = ["load_study_data", "data_summary", "first_draw_table", "centralized_baseline", "FedStudy", "selection_study",
           "fairness_table"]


def load_study_data(config: FedStudyConfig) -> FederatedData:
    """The study's devices: one per Shakespeare speaker, or tweets split with Dirichlet label skew.

    ``clients_per_round`` larger than the devices holding data is an error naming both numbers.
    """
    from ..tasks import shakespeare_task, tweets_task

    if config.task == "shakespeare":
        data = shakespeare_task(size=config.data_size, context=config.context, stride=config.stride)
    else:
        data = tweets_task(size=config.data_size, n_clients=config.n_clients, alpha=config.alpha, seed=config.seed)
    available = int((data.train.sizes > 0).sum())
    if config.clients_per_round > available:
        raise ValueError(f"The 'clients_per_round' parameter of FedStudyConfig must be <= the {available} devices holding "
                         f"training data in {data.name}. Got {config.clients_per_round} instead.")
    return data


def data_summary(data: FederatedData) -> str:
    """One line on how uneven the devices are (count, samples, median and max per device, top-10% share)."""
    sizes = data.train.sizes
    top = np.sort(sizes)[::-1][: max(1, len(sizes) // 10)].sum() / max(sizes.sum(), 1)
    return (f"{data.name}: {data.n_clients} devices, {data.train.n_samples} training samples, {data.n_classes} classes; "
            f"samples per device: median {np.median(sizes):.0f}, max {sizes.max()}, the top 10% of devices hold {top:.0%}")


def first_draw_table(data: FederatedData, *, strategies=("uniform", "activity", "tempered"), top: int = 5) -> pd.DataFrame:
    """Probability that each of the ``top`` most active devices is the first one drawn, per strategy."""
    from ..selection import first_draw_probabilities

    sizes = data.train.sizes
    idx = np.argsort(-sizes, kind="stable")[:top]
    names = [str(n) for n in data.train.names[idx]] if data.train.names is not None else idx.tolist()
    return pd.DataFrame({s: first_draw_probabilities(s, sizes)[idx] for s in strategies}, index=names)


def centralized_baseline(data: FederatedData, config: FedStudyConfig, *, model_fn=None) -> pd.DataFrame:
    """The same model and SGD on the pooled training data, one row per epoch (``epoch``, ``samples_seen``,
    ``train_loss``, ``test_*``, ``seconds``)."""
    from ..tasks import make_model_fn

    _, hist = train_centralized(data, model_fn=model_fn or make_model_fn(data), epochs=config.central_epochs,
                                batch_size=config.batch_size, lr=config.client_lr, seed=config.seed, progress=False)
    return pd.DataFrame(hist)


@dataclass
class FedStudy:
    """What :func:`selection_study` returns: ``runs[setting][strategy]`` (:class:`FedResult`) and ``table``, one row
    per (setting, strategy) with the final metrics and seconds."""

    runs: dict
    table: pd.DataFrame
    iid_data: FederatedData | None = None

    def histories(self, setting: str) -> dict:
        return {s: r.history for s, r in self.runs[setting].items()}

    def finals(self, metric: str, settings=("static", "continual")) -> dict:
        """``{setting: {strategy: final metric}}`` for :func:`workbench.plots.federated.settings_figure`."""
        return {s: {k: r.final[metric] for k, r in self.runs[s].items()} for s in settings if s in self.runs}


def _final_row(setting: str, strategy: str, res: FedResult, **extra) -> dict:
    return {"setting": setting, "strategy": strategy, **extra, **res.final, "seconds": res.seconds}


def selection_study(data: FederatedData, config: FedStudyConfig, *, model_fn=None, progress: bool = True,
                    settings=SETTINGS, iid_strategies=("uniform", "activity")) -> FedStudy:
    """Run every strategy of ``config`` in the static and continual settings, and ``iid_strategies`` on
    :func:`~workbench.federated.partition.shuffled_like` devices (same sizes, IID samples).

    Returns
    -------
    FedStudy
        ``table`` columns: ``setting``, ``strategy``, the :attr:`FedResult.final` metrics, ``seconds``.
    """
    from tqdm.auto import tqdm

    from ..tasks import make_model_fn

    model_fn = model_fn or make_model_fn(data)
    iid_data = _shuffled(data, config)
    compare = [s for s in config.strategies if s in iid_strategies] or list(config.strategies[:1])
    jobs = [(setting, s) for setting in settings for s in (compare if setting == "shuffled_iid" else config.strategies)]
    runs: dict = {setting: {} for setting in settings}
    for setting, s in tqdm(jobs, desc="selection study", unit="run", disable=not progress):
        fed = config.fed_config(s, **(config.continual() if setting == "continual" else {}))
        runs[setting][s] = run_fedavg(iid_data if setting == "shuffled_iid" else data, model_fn=model_fn, config=fed,
                                      progress=False, simulator=config.simulator)
    table = pd.DataFrame([_final_row(setting, s, r) for setting, by in runs.items() for s, r in by.items()])
    return FedStudy(runs, table, iid_data)


def _shuffled(data: FederatedData, config: FedStudyConfig) -> FederatedData:
    """``data``'s devices with the same sizes and the samples dealt at random (the IID control)."""
    return FederatedData(data.X, data.y, train=shuffled_like(data.train, seed=config.seed), test=data.test,
                         n_classes=data.n_classes, task=data.task, name=data.name + "-shuffled")


def fairness_table(runs: dict) -> pd.DataFrame:
    """Each device's accuracy on its own test samples under the final model, averaged per activity group
    (:func:`~workbench.federated.users.activity_groups`), plus the 10th percentile; one row per strategy."""
    rows = []
    for strategy, res in runs.items():
        cm = res.client_metrics
        groups = activity_groups(cm["n_train"])
        row = {"strategy": strategy}
        row.update({f"{g}_users_accuracy": float(cm["accuracy"][groups == g].mean()) for g in ("light", "medium", "heavy")})
        row["accuracy_p10"] = res.final["client_accuracy_p10"]
        rows.append(row)
    return pd.DataFrame(rows)


def _among(config: FedStudyConfig, wanted) -> list:
    return [s for s in wanted if s in config.strategies] or list(config.strategies[:1])
