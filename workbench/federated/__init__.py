"""Federated learning: client partitions, device-selection strategies, a FedAvg simulator and a Flower adapter.

Modules: ``partition`` (IID, Dirichlet label skew, quantity skew, natural partitions, stored compactly),
``selection`` (registry of device-selection strategies), ``simulation`` (FedAvg, static and continual
settings, DP-FedAvg, centralized baseline), ``tasks`` (Shakespeare next-character LM, tweets classifier)
and ``flower`` (the same strategies as a Flower ``Strategy``; needs the optional ``flwr`` package).
"""
