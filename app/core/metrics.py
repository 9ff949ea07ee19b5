"""Prometheus metrics, declared once. Labels come only from config names or enums, never ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# LLM calls take from tens of milliseconds (local, cached) to minutes (long reasoning).
LLM_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
HTTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

VERDICTS = Counter(
    "jury_verdicts_total", "Verdicts by final status.", ["status", "category", "panel"]
)
VERDICT_LATENCY = Histogram(
    "jury_verdict_latency_seconds",
    "Wall time of a whole verdict.",
    ["panel"],
    buckets=LLM_LATENCY_BUCKETS,
)
JUROR_CALLS = Counter(
    "jury_juror_calls_total", "Juror and judge calls by outcome.", ["juror", "role", "outcome"]
)
JUROR_LATENCY = Histogram(
    "jury_juror_latency_seconds",
    "Latency of one juror or judge call, repair included.",
    ["juror", "role"],
    buckets=LLM_LATENCY_BUCKETS,
)
ROUNDS = Histogram(
    "jury_rounds", "Rounds per verdict, the first included.", ["panel"], buckets=(1, 2, 3, 4, 5, 10)
)
READ_AHEADS = Counter(
    "jury_judge_read_aheads_total",
    "Judge prompts read ahead into a local server's cache while jurors deliberate, by outcome.",
    ["judge", "outcome"],
)
JUDGE_CALIBRATIONS = Counter(
    "jury_judge_calibrations_total",
    "Calibrated judges' verdicts: kept (the judge's own choice), flipped (calibration chose "
    "the other), or skipped:<reason> (a probe failed or gave no usable logprobs).",
    ["judge", "outcome"],
)
SHIFTS = Counter("jury_shifts_total", "Position changes in rebuttal rounds.", ["juror"])
TOKENS = Counter("jury_tokens_total", "Tokens used by model calls.", ["juror", "kind"])
COST = Counter("jury_cost_usd_total", "Cost of model calls in US dollars.", ["juror"])
JUDGE_FALLBACKS = Counter(
    "jury_judge_fallbacks_total", "Verdicts decided by the weighted vote.", ["panel"]
)
QUORUM_FAILURES = Counter(
    "jury_quorum_failures_total", "Verdicts refused for no quorum.", ["panel"]
)
FAIL_OPEN = Counter(
    "jury_fail_open_verdicts_total",
    "Undecided verdicts answered with the category's fail-open option (never a real approval).",
    ["category", "panel"],
)
REDACTED_SECRETS = Counter(
    "jury_redacted_secrets_total",
    "Requests whose input held a secret, by kind (redacted or refused).",
    ["kind"],
)
HTTP_LATENCY = Histogram(
    "jury_http_request_duration_seconds",
    "HTTP request duration by route template.",
    ["method", "route", "status"],
    buckets=HTTP_LATENCY_BUCKETS,
)
RATE_LIMITED = Counter(
    "jury_rate_limited_requests_total", "Requests refused for a key's rate limit.", ["route"]
)
IDEMPOTENT_REPLAYS = Counter(
    "jury_idempotent_replays_total", "Requests answered from an Idempotency-Key's record."
)
REDIS_FAILURES = Counter(
    "jury_redis_failures_total",
    "Redis commands that failed or timed out; Jury used its in-process fallback.",
    ["operation"],
)
QUEUED_VERDICTS = Gauge(
    "jury_verdicts_queued", "Asynchronous verdicts accepted and not yet claimed by a worker."
)
ASYNC_JOBS = Counter(
    "jury_async_jobs_total",
    "Asynchronous verdict jobs by what became of them (done, held, missing, released).",
    ["outcome"],
)
