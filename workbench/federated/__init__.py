"""Federated learning: client partitions, device selection, server strategies, a FedAvg simulator and a Flower adapter.

Modules: ``partition`` (IID, Dirichlet label skew with minimum sizes, quantity skew, k-means topics, natural
partitions, stored compactly), ``selection`` (registry of device-selection strategies), ``strategies``
(registry of server steps: FedAvg, FedProx, FedAdam, FedYogi, FedAdagrad), ``simulation`` (the round as
overridable steps of ``FedAvgSimulator``; static and continual settings, DP-FedAvg, centralized baseline),
``batched`` (the round's devices trained together), ``privacy`` (per-client epsilon of DP-FedAvg under
non-uniform selection), ``users`` (light/medium/heavy users), ``tasks`` (Shakespeare next-character LM,
tweets classifier), ``studies`` (notebook 03's study layer) and ``flower`` (the same strategies as a
Flower ``Strategy``, Flower's ServerApp/ClientApp simulation; needs the optional ``flwr`` package).
"""
