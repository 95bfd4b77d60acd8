"""Notebook 03's per-client privacy: DP-FedAvg's epsilon of every device under each selection strategy."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..privacy import inclusion_probabilities, per_client_epsilon
from ..simulation import FederatedData, run_fedavg
from ..users import activity_groups
from .config import FedStudyConfig
from .runs import _among

__all__ = ["client_privacy_study"]


def client_privacy_study(data: FederatedData, config: FedStudyConfig, *, strategies=None,
                         noise_multiplier: float | None = None, clip: float | None = None, delta: float = 1e-5, run: bool = True,
                         model_fn=None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DP-FedAvg with client-level DP: every device's epsilon under each selection strategy, and the utility.

    A device's sampling rate is its inclusion probability per round
    (:func:`~workbench.federated.privacy.inclusion_probabilities`, static setting); its epsilon composes
    ``config.rounds`` rounds at that rate (:func:`~workbench.federated.privacy.per_client_epsilon`). With
    ``run``, each strategy also trains with DP-FedAvg (clip ``clip``, noise ``noise_multiplier``; default: the
    config's ``dp_clip`` and ``dp_noise``).
    ``strategies`` default to uniform, tempered and activity (those of them in ``config.strategies``).

    Returns
    -------
    clients : DataFrame
        One row per (strategy, device): ``n_train``, ``group`` (activity group), ``sample_rate``, ``epsilon``.
    summary : DataFrame
        One row per strategy: median and maximum epsilon, median epsilon of the heavy users, and (with ``run``)
        the DP model's final metrics.
    """
    from tqdm.auto import tqdm

    from ..tasks import make_model_fn

    strategies = _among(config, ("uniform", "tempered", "activity")) if strategies is None else list(strategies)
    noise_multiplier = config.dp_noise if noise_multiplier is None else noise_multiplier
    clip = config.dp_clip if clip is None else clip
    sizes = data.train.sizes
    groups = activity_groups(sizes)
    client_rows, summary = [], []
    for s in tqdm(list(strategies), desc="client privacy", unit="strategy", disable=not progress):
        q = inclusion_probabilities(s, sizes, k=config.clients_per_round)
        eps = per_client_epsilon(noise_multiplier=noise_multiplier, sample_rates=q, rounds=config.rounds, delta=delta)
        client_rows.append(pd.DataFrame({"strategy": s, "client": np.arange(len(sizes)), "n_train": sizes, "group": groups,
                                         "sample_rate": q, "epsilon": eps}))
        held = sizes > 0
        row = {"strategy": s, "epsilon_median": float(np.median(eps[held])), "epsilon_max": float(eps.max()),
               "heavy_users_epsilon_median": float(np.median(eps[held & (groups == "heavy")])),
               "light_users_epsilon_median": float(np.median(eps[held & (groups == "light")]))}
        if run:
            fed = config.fed_config(s, dp_clip=clip, dp_noise_multiplier=noise_multiplier, dp_delta=delta)
            res = run_fedavg(data, model_fn=model_fn or make_model_fn(data), config=fed, progress=False,
                             simulator=config.simulator)
            row.update({k: v for k, v in res.final.items() if k.startswith("test_")})
        summary.append(row)
    return pd.concat(client_rows, ignore_index=True), pd.DataFrame(summary)
