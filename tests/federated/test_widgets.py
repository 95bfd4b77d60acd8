"""The federated panel, driven in Python: building runs nothing; a click trains with the chosen selection and
server strategies and draws a line per run."""
import torch
from torch import nn  # noqa: F401

from workbench.federated.partition import iid_partition
from workbench.federated.simulation import FederatedData


def test_panel_runs_the_chosen_strategies():
    from workbench.widgets.federated import federated_panel

    X = torch.randn(200, 4)
    y = (X[:, 0] > 0).long()
    train, test = iid_partition(200, n_clients=8, seed=0).split(0.25)
    data = FederatedData(X, y, train=train, test=test, n_classes=2)
    calls = []

    def data_fn(alpha):
        calls.append(alpha)
        return data

    panel = federated_panel(data_fn, rounds=3, clients_per_round=3, uses_alpha=False, max_local_steps=2)
    assert calls == []  # nothing runs before a click
    controls = panel.children[0]
    strategy_w, server_w, _ = controls.children[0].children
    button, _, status = controls.children[2].children
    strategy_w.value, server_w.value = "uniform", "fedadam"
    button.click()
    assert "done" in status.value and calls == [0.0], status.value
    server_w.value = "fedyogi"
    button.click()
    assert "done" in status.value and len(calls) == 1  # the data is cached


def test_panel_runs_on_the_batched_engine():
    from workbench.federated.batched import BatchedSimulator
    from workbench.widgets.federated import federated_panel

    X = torch.randn(160, 4)
    y = (X[:, 0] > 0).long()
    train, test = iid_partition(160, n_clients=8, seed=1).split(0.25)
    data = FederatedData(X, y, train=train, test=test, n_classes=2)
    panel = federated_panel(lambda a: data, rounds=2, clients_per_round=3, uses_alpha=False, max_local_steps=2,
                            simulator=BatchedSimulator)
    button, _, status = panel.children[0].children[2].children
    button.click()
    assert "done" in status.value, status.value
