"""Notebook 03's validated config: :class:`FedStudyConfig` (every knob) and :func:`study_config` (from the
notebook's parameters, grouped dicts filled)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from workbench.validation import Boolean, Interval, Options, Seq, check_fields, field_defaults, fill_group

from ..batched import BatchedSimulator
from ..selection import STRATEGIES
from ..simulation import FedAvgSimulator, FedConfig
from ..strategies import SERVER_STRATEGIES

__all__ = ["ENGINES", "SETTINGS", "FedStudyConfig", "GROUPS", "study_config"]


#: Simulators by name: ``batched`` trains a round's devices together (equal to ``per_device`` within float
#: rounding, :mod:`~workbench.federated.batched`), ``per_device`` is the plain loop.
ENGINES = {"batched": BatchedSimulator, "per_device": FedAvgSimulator}

#: The settings of :func:`selection_study` and :func:`seed_study`.
SETTINGS = ("static", "continual", "shuffled_iid")
_COUNT = Interval(int, 1, None)
_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class FedStudyConfig:
    """Every parameter of notebook 03 (validated; NumPy scalars accepted). See the notebook for their meaning.

    Examples
    --------
    >>> FedStudyConfig(strategies=["uniform", "nearest"])
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'strategies' parameter of FedStudyConfig must be a non-empty list or tuple of one of ('activity', 'power_of_choice', 'round_robin', 'tempered', 'uniform'). Got ['uniform', 'nearest'] instead.
    """

    task: str = "shakespeare"
    data_size: str = "small"
    strategies: tuple = ("uniform", "activity", "tempered", "power_of_choice", "round_robin")
    rounds: int = 40
    clients_per_round: int = 10
    local_epochs: int = 1
    max_local_steps: int | None = 20
    batch_size: int = 32
    client_lr: float = 0.5
    server_lr: float = 1.0
    server: str = "fedavg"
    eval_every: int = 5
    context: int = 16
    stride: int = 8
    n_clients: int = 100
    alpha: float = 0.5
    continual_periods: int = 4
    storage_limit: int = 64
    central_epochs: int = 2
    seed: int = 0
    topics: bool = True
    dp_noise: float = 0.3
    dp_clip: float = 0.5
    engine: str = "batched"

    def __post_init__(self):
        strategies = self.strategies.split(",") if isinstance(self.strategies, str) else self.strategies
        object.__setattr__(self, "strategies", [s.strip() if isinstance(s, str) else s for s in strategies])
        check_fields(self, task=Options(("shakespeare", "tweets")), data_size=Options(("tiny", "small", "full")),
                     strategies=Seq(Options(tuple(sorted(STRATEGIES))), min_len=1), rounds=_COUNT,
                     clients_per_round=_COUNT, local_epochs=_COUNT, max_local_steps=(_COUNT, None), batch_size=_COUNT,
                     client_lr=_POSITIVE, server_lr=_POSITIVE, server=Options(tuple(sorted(SERVER_STRATEGIES))),
                     eval_every=_COUNT, context=_COUNT, stride=_COUNT, n_clients=Interval(int, 2, None), alpha=_POSITIVE,
                     continual_periods=_COUNT, storage_limit=_COUNT, central_epochs=_COUNT, seed=Interval(int, None, None),
                     topics=Boolean(), dp_noise=_POSITIVE, dp_clip=_POSITIVE, engine=Options(tuple(sorted(ENGINES))))

    @property
    def simulator(self):
        """The simulator class of :attr:`engine` (:data:`ENGINES`)."""
        return ENGINES[self.engine]

    @property
    def metric(self) -> str:
        """The headline metric: next-character perplexity (Shakespeare, lower is better) or accuracy (tweets)."""
        return "test_perplexity" if self.task == "shakespeare" else "test_accuracy"

    @property
    def lower_is_better(self) -> bool:
        return self.metric == "test_perplexity"

    def fed_config(self, strategy: str, **changes) -> FedConfig:
        """The :class:`FedConfig` of one run (``changes`` override fields, e.g. ``seed`` or ``periods``)."""
        base = dict(rounds=self.rounds, clients_per_round=self.clients_per_round, strategy=strategy,
                    local_epochs=self.local_epochs, max_local_steps=self.max_local_steps, batch_size=self.batch_size,
                    client_lr=self.client_lr, server_lr=self.server_lr, server=self.server, eval_every=self.eval_every,
                    seed=self.seed)
        base.update(changes)
        return FedConfig(**base)

    def parameters(self) -> dict:
        """The notebook's parameter names (upper case) and values, for the run record."""
        return {name.upper(): value for name, value in asdict(self).items()}

    def continual(self) -> dict:
        """The FedConfig fields of the continual setting."""
        return {"periods": self.continual_periods, "storage_limit": self.storage_limit}


#: Notebook 03's grouped parameters (dict literals) -> {key: FedStudyConfig field}; see :func:`study_config`.
GROUPS = {
    "training": {"local_epochs": "local_epochs", "batch_size": "batch_size", "client_lr": "client_lr",
                 "server_lr": "server_lr", "eval_every": "eval_every", "central_epochs": "central_epochs",
                 "engine": "engine"},
    "data": {"context": "context", "stride": "stride", "n_clients": "n_clients", "alpha": "alpha", "topics": "topics"},
    "continual": {"periods": "continual_periods", "storage_limit": "storage_limit"},
    "dp": {"noise": "dp_noise", "clip": "dp_clip"},
}


def study_config(*, training: dict | None = None, data: dict | None = None, continual: dict | None = None,
                 dp: dict | None = None, **fields) -> FedStudyConfig:
    """A :class:`FedStudyConfig` from notebook 03's parameters: plain ``fields`` plus the grouped dicts
    (:data:`GROUPS`), each of which may hold only *some* of its keys (the rest keep their defaults), so
    ``-p DATA '{alpha: 0.05}'`` changes one value. Unknown keys are an error naming the accepted ones.

    Examples
    --------
    >>> cfg = study_config(rounds=3, data={"alpha": 0.05}, dp={"noise": 1.0})
    >>> cfg.rounds, cfg.alpha, cfg.context, cfg.dp_noise, cfg.dp_clip
    (3, 0.05, 16, 1.0, 0.5)
    >>> study_config(dp={"sigma": 1.0})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'dp' parameter of study_config must be a dict with keys among ['clip', 'noise']. Got {'sigma': 1.0} instead.
    """
    for group, given in {"training": training, "data": data, "continual": continual, "dp": dp}.items():
        if given is not None:
            keys = GROUPS[group]
            filled = fill_group(given, field_defaults(FedStudyConfig, keys), name=group, owner="study_config")
            fields.update({keys[k]: v for k, v in filled.items()})
    return FedStudyConfig(**fields)
