"""The Jury configuration file: jurors, judge, panels, policies.

Loaded once at start-up from YAML into frozen pydantic models and validated as a whole, so a
mistake (an unknown juror in a panel, a judge on its own panel, a missing API key variable) stops
the process with an error that names the offending entry instead of failing mid-verdict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.core.clock import MAX_DEADLINE_S
from app.core.errors import ConfigError
from app.core.options import validate_options

SCRIPTED_MODEL = "scripted"
RECORDED_MODEL = "recorded"
NO_JUDGE = "none"
"""A panel's ``judge: none``: no judge model; the approved aggregation rule gives the verdict."""

# "crash": the provider raises an untyped exception, as a bug in it or a library under it does.
ScriptFailure = Literal[
    "timeout", "error", "rate_limited", "auth", "invalid_output", "invalid_once", "crash"
]
StructuredOutput = Literal["json_schema", "json_object_schema", "json_object", "none"]
Transport = Literal["litellm", "openai_compatible"]
EarlyStop = Literal["unanimous", "never"]
LabelCalibration = Literal["content_free"]
JudgeSides = Literal["written", "quoted"]

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class Frozen(BaseModel):
    """Base for config models: immutable and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ScriptStep(Frozen):
    """What a scripted model answers in one round (or one judge call)."""

    position: str | None = Field(default=None, description="Juror position or judge verdict.")
    confidence: float = Field(default=0.8, ge=0, le=1)
    reasoning: str = "The scripted juror's reasoning."
    evidence: str | None = None
    disagreement: str | None = Field(
        default=None,
        description="The judge's summary; by default one naming every option, as a judge must.",
    )
    latency_ms: float = Field(default=0, ge=0)
    failure: ScriptFailure | None = None
    prompt_tokens: int = Field(default=50, ge=0)
    completion_tokens: int = Field(default=20, ge=0)
    cost_usd: float = Field(default=0.0, ge=0, description="What the call is billed as.")
    label_logprobs: dict[str, float] | None = Field(
        default=None,
        description="A calibrated judge's log-probability of each option's label, as a "
        "server's logprobs would give it at the verdict's first token.",
    )
    label_prior: dict[str, float] | None = Field(
        default=None,
        description="The same on the content-free copy of the case (default: label_logprobs).",
    )


class Script(Frozen):
    """A scripted model's answers, one step per round; the last step repeats."""

    rounds: tuple[ScriptStep, ...] = Field(min_length=1)

    def step(self, round_number: int) -> ScriptStep:
        """Return the step for a 1-based round, repeating the last one."""
        return self.rounds[min(round_number, len(self.rounds)) - 1]


class Recording(Frozen):
    """Which recorded judge a ``model: recorded`` juror plays, from which recordings file."""

    file: Path = Field(description="JSONL of recorded judgements (see the README).")
    judge: str = Field(min_length=1, description="The recorded judge's name in the file.")
    prompting: str = Field(default="Vanilla", min_length=1, description="Prompting style.")
    confidence: float = Field(
        default=0.75, ge=0, le=1, description="Stated confidence: recordings carry none."
    )


class LocalServe(Frozen):
    """A local model that Jury serves itself on loopback (see ``jury local status``)."""

    catalog: str = Field(description="Key of the model in Jury's local catalogue.")
    port: int = Field(ge=1024, le=65535)
    threads: int = Field(default=2, ge=1, le=64)
    context: int = Field(default=4096, ge=512)


class ModelSpec(Frozen):
    """A model Jury calls: a juror or the judge."""

    name: Name
    model: str = Field(min_length=1, description="litellm model string, or 'scripted'.")
    family: str = Field(min_length=1, description="Model family, for panel diversity.")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="Env var holding the API key.")
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_tokens: int = Field(default=512, ge=16, le=32_768)
    temperature: float = Field(default=0.0, ge=0, le=2)
    frequency_penalty: float | None = Field(
        default=None,
        ge=-2,
        le=2,
        description="OpenAI's frequency_penalty, for a small model that loops on a token "
        "('1.5, 1.5, ...'); sent by transport openai_compatible only.",
    )
    structured_output: StructuredOutput = "json_schema"
    max_concurrency: int | None = Field(default=None, ge=1, description="Shared call limit.")
    transport: Transport = Field(
        default="litellm",
        description="openai_compatible: plain HTTP to a keyless self-hosted server at api_base, "
        "without litellm (unpriced: such calls cost nothing Jury can measure).",
    )
    local: LocalServe | None = None
    script: Script | None = None
    recorded: Recording | None = None
    label_calibration: LabelCalibration | None = Field(
        default=None,
        description="A judge only. content_free: the verdict is the option the judge finds "
        "likeliest after dividing out its own prior over the labels, measured on a "
        "content-free copy of the case (Zhao et al. 2021, arXiv 2102.09690). Needs logprobs: "
        "transport openai_compatible, or a script's label_logprobs.",
    )
    sides: JudgeSides = Field(
        default="written",
        description="A judge only. written: the judge writes the strongest argument for each "
        "position the jurors held. quoted: it names the juror who gave that argument, and "
        "Jury quotes the juror's final reasoning (a few tokens to decode instead of two "
        "sentences: for a slow local judge).",
    )
    evidence: bool | None = Field(
        default=None,
        description="A juror only. Whether it is asked for evidence (a short fact or quote) "
        "beside its reasoning. Unset: hosted jurors are, local ones are not (a small model's "
        "evidence was a cut-off repeat of its reasoning, and about a fifth of its decoding).",
    )
    cost: float | None = Field(
        default=None,
        ge=0,
        description="What one call costs, in USD per million tokens (the mean of the input and "
        "output prices), for the sequential mode's order. Unset: litellm's known price for a "
        "hosted model; 0 for local, scripted, recorded and self-hosted models.",
    )

    @property
    def is_scripted(self) -> bool:
        """Return whether this model is answered by the scripted provider."""
        return self.model == SCRIPTED_MODEL

    @property
    def is_recorded(self) -> bool:
        """Return whether this model replays recorded judgements (``model: recorded``)."""
        return self.model == RECORDED_MODEL

    @property
    def is_hosted(self) -> bool:
        """Return whether this model is reached over the network with credentials."""
        offline = self.is_scripted or self.is_recorded
        return not offline and self.local is None and self.api_base is None

    @property
    def is_local(self) -> bool:
        """Return whether Jury serves this model itself on loopback."""
        return self.local is not None

    @property
    def asks_evidence(self) -> bool:
        """Return whether this juror's answer has an ``evidence`` field."""
        return self.evidence if self.evidence is not None else not self.is_local

    @model_validator(mode="before")
    @classmethod
    def _local_server_address(cls, data: Any) -> Any:
        """Point a locally served model at its loopback server unless told otherwise."""
        if isinstance(data, dict) and data.get("local") and not data.get("api_base"):
            port = data["local"].get("port") if isinstance(data["local"], dict) else None
            if port is not None:
                return {**data, "api_base": f"http://127.0.0.1:{port}/v1"}
        return data

    @model_validator(mode="after")
    def _script_matches_model(self) -> ModelSpec:
        if self.is_scripted and self.script is None:
            raise ValueError(f"'{self.name}' uses model 'scripted' but has no 'script' block")
        if not self.is_scripted and self.script is not None:
            raise ValueError(f"'{self.name}' has a 'script' block but model '{self.model}'")
        if self.is_recorded != (self.recorded is not None):
            raise ValueError(f"'{self.name}': model 'recorded' and a 'recorded' block go together")
        if self.transport == "openai_compatible" and (
            self.is_scripted or self.api_base is None or self.api_key_env is not None
        ):
            # The direct transport does not price calls: a key means a paid endpoint.
            raise ValueError(
                f"'{self.name}': transport openai_compatible needs an api_base and no "
                "api_key_env (a keyless self-hosted server)"
            )
        if self.frequency_penalty is not None and self.transport != "openai_compatible":
            raise ValueError(f"'{self.name}': frequency_penalty needs transport openai_compatible")
        if self.label_calibration is not None and not (
            self.transport == "openai_compatible" or self.is_scripted
        ):
            # litellm's providers differ on logprobs (Anthropic's API has none): only the
            # direct transport is known to return what calibration reads.
            raise ValueError(
                f"'{self.name}': label_calibration needs transport openai_compatible "
                "(or a scripted model)"
            )
        return self


class Panel(Frozen):
    """A named set of jurors with its judge and protocol settings."""

    jurors: tuple[Name, ...] = Field(min_length=1)
    judge: Name | None = Field(
        default=None,
        description="Defaults to the config's judge; 'none': no judge, the approved "
        "aggregation rule gives the verdict.",
    )
    max_rounds: int | None = Field(default=None, ge=1, le=10)
    quorum: int | None = Field(default=None, ge=1)
    allow_single_family: bool = False


FailMode = Literal["closed", "open"]
SecretsPolicy = Literal["redact", "refuse"]


class CategoryPolicy(Frozen):
    """When a verdict in a category must be escalated to a human, and how it fails."""

    escalate_below_confidence: float = Field(default=0.6, ge=0, le=1)
    escalate_when_degraded: bool = True
    escalate_on_judge_fallback: bool = True
    escalate_on_split: bool = Field(default=False, description="Escalate unless unanimous.")
    critical: bool = Field(default=False, description="Unanimity is suspicious here.")
    risk_alpha: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="Guaranteed risk: the error rate allowed among "
        "verdicts that are not escalated (the threshold is approved like weights).",
    )
    risk_delta: float = Field(
        default=0.10, gt=0, lt=1, description="Guaranteed risk: the chance the bound fails."
    )
    fail_mode: FailMode = Field(
        default="closed",
        description="When Jury cannot decide (no quorum, the deadline passed first): 'closed' "
        "refuses (503 no_quorum); 'open' answers fail_open_option, labelled fail_mode 'open'.",
    )
    fail_open_option: str | None = Field(
        default=None,
        description="The answer when failing open; the request's first option if unset.",
    )
    secrets: SecretsPolicy = Field(
        default="redact",
        description="A secret in the input: 'redact' replaces it by [REDACTED:kind] before any "
        "model sees it; 'refuse' answers 422 secret_in_input.",
    )
    sequential: bool = Field(
        default=False,
        description="Convene jurors one by one, cheapest first, and stop once the approved "
        "rule's posterior for one option reaches the target or the rest cannot change the "
        "winner (see app/deliberation/sequential.py).",
    )
    sequential_target: float = Field(
        default=0.95,
        ge=0.5,
        le=1,
        description="Sequential mode: the posterior at which convening stops; the category's "
        "approved guaranteed-risk threshold replaces it where one exists and is higher.",
    )


class Protocol(Frozen):
    """Defaults for the deliberation protocol."""

    default_options: tuple[str, ...] = ("yes", "no")
    max_rounds: int = Field(default=2, ge=1, le=10)
    early_stop: EarlyStop = "unanimous"
    quorum: int = Field(default=2, ge=1)
    deadline_s: float = Field(default=120.0, gt=0, le=MAX_DEADLINE_S)

    @field_validator("default_options")
    @classmethod
    def _options_are_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(validate_options(value))


class Budgets(Frozen):
    """Spend caps: per verdict (rebuttal rounds are skipped) and per API key per UTC day.

    A cap left unset does not apply. The per-verdict dollar cap defaults to $1, a safety net
    against a runaway hosted panel; local and scripted models cost nothing.
    """

    per_verdict_tokens: int | None = Field(default=None, ge=1)
    per_verdict_usd: float | None = Field(default=1.0, gt=0)
    per_key_daily_tokens: int | None = Field(default=None, ge=1)
    per_key_daily_usd: float | None = Field(default=None, gt=0)
    reserve_tokens: int = Field(
        default=10_000,
        ge=0,
        description="Tokens held against a daily cap while a verdict runs; its actual use "
        "replaces them when it ends.",
    )
    reserve_usd: float = Field(
        default=0.10, ge=0, description="Dollars held against a daily cap while a verdict runs."
    )

    @model_validator(mode="after")
    def _reserve_fits_the_daily_caps(self) -> Budgets:
        pairs = (
            (
                "reserve_tokens",
                self.reserve_tokens,
                "per_key_daily_tokens",
                self.per_key_daily_tokens,
            ),
            ("reserve_usd", self.reserve_usd, "per_key_daily_usd", self.per_key_daily_usd),
        )
        for reserve_name, reserve, cap_name, cap in pairs:
            if cap is not None and reserve > cap:
                raise ValueError(
                    f"{reserve_name} {reserve} exceeds {cap_name} {cap}: no verdict could start"
                )
        return self


class JuryConfig(Frozen):
    """The whole configuration file."""

    protocol: Protocol = Protocol()
    jurors: tuple[ModelSpec, ...] = Field(min_length=1)
    judges: tuple[ModelSpec, ...] = Field(
        default=(), description="May be empty when every panel says judge: none."
    )
    panels: Mapping[Name, Panel] = Field(min_length=1)
    default_panel: Name = "default"
    default_judge: Name | None = Field(default=None, description="Defaults to the first judge.")
    categories: Mapping[str, CategoryPolicy] = Field(default_factory=dict)
    budgets: Budgets = Budgets()

    @model_validator(mode="after")
    def _check_references(self) -> JuryConfig:
        _check_unique(self.jurors, self.judges)
        for juror in self.jurors:
            if juror.label_calibration is not None:
                raise ValueError(f"juror '{juror.name}': label_calibration is for judges only")
            if juror.sides != "written":
                raise ValueError(f"juror '{juror.name}': sides is for judges only")
        for judge in self.judges:
            if judge.evidence is not None:
                raise ValueError(f"judge '{judge.name}': evidence is for jurors only")
        juror_names = {j.name for j in self.jurors}
        judge_names = {j.name for j in self.judges}
        if self.default_panel not in self.panels:
            raise ValueError(f"default_panel '{self.default_panel}' is not a defined panel")
        if self.default_judge is not None and self.default_judge not in judge_names:
            raise ValueError(f"default_judge '{self.default_judge}' is not a defined judge")
        for panel_name, panel in self.panels.items():
            self._check_panel(panel_name, panel, juror_names, judge_names)
        return self

    def _check_panel(
        self, panel_name: str, panel: Panel, juror_names: set[str], judge_names: set[str]
    ) -> None:
        for juror in panel.jurors:
            if juror not in juror_names:
                raise ValueError(f"panel '{panel_name}': unknown juror '{juror}'")
        if len(set(panel.jurors)) != len(panel.jurors):
            raise ValueError(f"panel '{panel_name}': a juror is listed twice")
        if panel.judge not in (None, NO_JUDGE) and panel.judge not in judge_names:
            raise ValueError(f"panel '{panel_name}': unknown judge '{panel.judge}'")
        if panel.judge is None and not self.judges:
            raise ValueError(
                f"panel '{panel_name}': no judge is defined; add one or set judge: none"
            )
        judge = self.judge_for(panel)
        members = [self.juror(name) for name in panel.jurors]
        replayed = judge is None or judge.is_scripted or judge.is_recorded
        if judge is not None and not replayed and any(m.model == judge.model for m in members):
            raise ValueError(f"panel '{panel_name}': judge '{judge.name}' sits on its own panel")
        families = {m.family for m in members}
        if len(members) > 1 and len(families) == 1 and not panel.allow_single_family:
            raise ValueError(
                f"panel '{panel_name}': every juror is of family '{families.pop()}'; "
                "set allow_single_family: true to allow it"
            )
        quorum = self.quorum(panel)
        if quorum > len(panel.jurors):
            raise ValueError(
                f"panel '{panel_name}': quorum {quorum} exceeds its {len(panel.jurors)} jurors"
            )

    def juror(self, name: str) -> ModelSpec:
        """Return the juror called ``name``."""
        return next(j for j in self.jurors if j.name == name)

    def judge_for(self, panel: Panel) -> ModelSpec | None:
        """Return the judge of a panel (its own, or the default judge); None for judge: none."""
        if panel.judge == NO_JUDGE:
            return None
        name = panel.judge or self.default_judge or self.judges[0].name
        return next(j for j in self.judges if j.name == name)

    def quorum(self, panel: Panel) -> int:
        """Return how many valid jurors a verdict of this panel needs."""
        return panel.quorum if panel.quorum is not None else self.protocol.quorum

    def max_rounds(self, panel: Panel) -> int:
        """Return the panel's default number of rounds, the first included."""
        return panel.max_rounds if panel.max_rounds is not None else self.protocol.max_rounds

    def policy(self, category: str | None) -> CategoryPolicy:
        """Return the escalation policy of a category, falling back to ``default``."""
        if category is not None and category in self.categories:
            return self.categories[category]
        return self.categories.get("default", CategoryPolicy())

    def models(self) -> tuple[ModelSpec, ...]:
        """Return every juror and judge."""
        return self.jurors + self.judges


def _check_unique(jurors: tuple[ModelSpec, ...], judges: tuple[ModelSpec, ...]) -> None:
    seen: set[str] = set()
    if any(spec.name == NO_JUDGE for spec in judges):
        raise ValueError(f"a judge may not be called '{NO_JUDGE}': it means no judge")
    for spec in jurors + judges:
        if spec.name in seen:
            raise ValueError(f"model name '{spec.name}' is defined twice")
        seen.add(spec.name)


def check_credentials(config: JuryConfig, environ: Mapping[str, str]) -> None:
    """Fail when a hosted model's API key variable is not set."""
    for spec in config.models():
        if spec.api_key_env is not None and not environ.get(spec.api_key_env):
            raise ConfigError(
                f"'{spec.name}' ({spec.model}) needs the environment variable "
                f"{spec.api_key_env}, which is not set"
            )


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> JuryConfig:
    """Read, validate and return the config at ``path``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        config = JuryConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc
    check_credentials(config, os.environ if environ is None else environ)
    return config


def _describe(exc: ValidationError) -> str:
    """Render validation errors as 'location: message' lines naming the entry."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return "; ".join(lines)
