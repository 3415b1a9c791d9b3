"""What a labeling run is asked (LabelSettings), what it did (LabelReport), and what its tokens cost."""

from __future__ import annotations

from dataclasses import dataclass, field

# USD per million tokens (in, out); --price overrides; unknown models cost 0 and say so
PRICES = {"gpt-5-mini": (0.25, 2.0), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1": (2.0, 8.0), "gpt-5": (1.25, 10.0)}


@dataclass
class LabelSettings:
    model: str = "gpt-5-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    limit: int | None = None
    layers: tuple[int, int] | None = None
    attempts: int = 3  # answers that do not validate, per neuron and pass
    transient_retries: int = 5  # 429 / 5xx / timeouts, per neuron and pass
    max_cost: float | None = None
    run: str | None = None
    price: tuple[float, float] | None = None
    commit_every: int = 200
    commit_seconds: float = 5.0
    timeout: float = 60.0
    backoff: float = 1.0  # seconds, doubled per retry, with jitter


@dataclass
class LabelReport:
    labeled: dict[str, int] = field(default_factory=dict)  # per pass
    failed: int = 0
    calls: int = 0
    skipped: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    stopped_at_cost: bool = False


def price(s: LabelSettings) -> tuple[float, float]:
    return s.price or PRICES.get(s.model, (0.0, 0.0))


def run_name(s: LabelSettings) -> str:
    """The run's name: the `source` of its labels."""
    return s.run or f"label-{s.model}"
