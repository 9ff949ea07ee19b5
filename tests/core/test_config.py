"""Start-up validation of the YAML config: every mistake names the offending entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import JuryConfig, load_config
from app.core.errors import ConfigError
from tests.builders import SCRIPTED_CONFIG


def hosted(name: str, model: str, family: str, **extra: Any) -> dict[str, Any]:
    """Return a hosted juror or judge entry."""
    return {"name": name, "model": model, "family": family, **extra}


def base_config() -> dict[str, Any]:
    """Return a valid config of hosted models from three families (no key variables)."""
    return {
        "jurors": [
            hosted("gpt", "openai/gpt-4o-mini", "openai"),
            hosted("claude", "anthropic/claude-3-5-haiku-latest", "anthropic"),
            hosted("gemini", "gemini/gemini-1.5-flash", "google"),
        ],
        "judges": [hosted("judge", "mistral/mistral-large-latest", "mistral")],
        "panels": {"default": {"jurors": ["gpt", "claude", "gemini"]}},
    }


def write(tmp_path: Path, raw: Any) -> Path:
    """Write ``raw`` as the YAML config file and return its path."""
    path = tmp_path / "jury.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def load(tmp_path: Path, raw: Any, environ: dict[str, str] | None = None) -> JuryConfig:
    """Load ``raw`` through the real loader with a controlled environment."""
    return load_config(write(tmp_path, raw), environ=environ or {})


def config_error(tmp_path: Path, raw: Any, environ: dict[str, str] | None = None) -> str:
    """Return the message of the ConfigError that loading ``raw`` raises."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, raw, environ)
    assert caught.value.code == "config_error"
    return caught.value.detail


def test_the_valid_base_loads(tmp_path: Path) -> None:
    config = load(tmp_path, base_config())

    panel = config.panels["default"]
    assert panel.jurors == ("gpt", "claude", "gemini")
    judge = config.judge_for(panel)
    assert judge is not None
    assert judge.name == "judge"
    assert config.quorum(panel) == 2
    assert config.max_rounds(panel) == 2
    assert config.policy("anything").escalate_below_confidence == 0.6


def test_the_scripted_reference_config_loads() -> None:
    config = load_config(SCRIPTED_CONFIG, environ={})

    panel = config.panels[config.default_panel]
    assert panel.jurors == ("alpha", "bravo", "charlie")
    assert config.protocol.default_options == ("approve", "reject")
    assert all(spec.is_scripted and spec.script is not None for spec in config.models())
    assert config.policy("deploy").critical is True


def test_unknown_juror_in_a_panel_is_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["panels"]["default"]["jurors"].append("llama")

    message = config_error(tmp_path, raw)

    assert "panel 'default': unknown juror 'llama'" in message


def test_unknown_panel_judge_is_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["panels"]["default"]["judge"] = "oracle"

    assert "unknown judge 'oracle'" in config_error(tmp_path, raw)


def test_judge_on_its_own_panel_is_refused(tmp_path: Path) -> None:
    raw = base_config()
    raw["judges"] = [hosted("judge", "openai/gpt-4o-mini", "openai")]

    message = config_error(tmp_path, raw)

    assert "panel 'default': judge 'judge' sits on its own panel" in message


def test_scripted_judge_may_share_the_scripted_model(tmp_path: Path) -> None:
    script = {"rounds": [{"position": "yes"}]}
    raw = {
        "jurors": [
            {"name": "a", "model": "scripted", "family": "x", "script": script},
            {"name": "b", "model": "scripted", "family": "y", "script": script},
        ],
        "judges": [{"name": "judge", "model": "scripted", "family": "z", "script": script}],
        "panels": {"default": {"jurors": ["a", "b"]}},
    }

    config = load(tmp_path, raw)
    judge = config.judge_for(config.panels["default"])
    assert judge is not None
    assert judge.name == "judge"


def test_a_panel_may_have_no_judge_and_the_judges_may_be_empty(tmp_path: Path) -> None:
    raw = base_config()
    raw["judges"] = []
    raw["panels"] = {"default": {"jurors": ["gpt", "claude"], "judge": "none"}}

    config = load(tmp_path, raw)

    assert config.judge_for(config.panels["default"]) is None


def test_a_panel_without_a_judge_needs_judge_none(tmp_path: Path) -> None:
    raw = base_config()
    raw["judges"] = []
    raw["panels"] = {"default": {"jurors": ["gpt", "claude"]}}

    with pytest.raises(ConfigError, match="no judge is defined; add one or set judge: none"):
        load(tmp_path, raw)


def test_single_family_panel_needs_the_flag(tmp_path: Path) -> None:
    raw = base_config()
    for juror in raw["jurors"]:
        juror["family"] = "openai"

    message = config_error(tmp_path, raw)
    assert "panel 'default': every juror is of family 'openai'" in message
    assert "allow_single_family" in message

    raw["panels"]["default"]["allow_single_family"] = True
    assert load(tmp_path, raw).panels["default"].allow_single_family is True


def test_missing_api_key_variable_is_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["jurors"][0]["api_key_env"] = "JURY_TEST_OPENAI_KEY"

    message = config_error(tmp_path, raw, environ={})
    assert "'gpt' (openai/gpt-4o-mini)" in message
    assert "JURY_TEST_OPENAI_KEY" in message

    # An empty variable is as good as none; a set one passes.
    config_error(tmp_path, raw, environ={"JURY_TEST_OPENAI_KEY": ""})
    config = load(tmp_path, raw, environ={"JURY_TEST_OPENAI_KEY": "sk-test"})
    assert config.juror("gpt").api_key_env == "JURY_TEST_OPENAI_KEY"


def test_the_key_itself_never_appears_in_the_config(tmp_path: Path) -> None:
    raw = base_config()
    raw["jurors"][0]["api_key"] = "sk-secret"

    message = config_error(tmp_path, raw)

    assert "jurors.0.api_key" in message
    assert "sk-secret" not in message


@pytest.mark.parametrize(
    ("where", "quorum", "expected"),
    [
        ("panel", 4, "panel 'default': quorum 4 exceeds its 3 jurors"),
        ("protocol", 5, "panel 'default': quorum 5 exceeds its 3 jurors"),
    ],
)
def test_quorum_above_the_panel_size_is_refused(
    tmp_path: Path, where: str, quorum: int, expected: str
) -> None:
    raw = base_config()
    if where == "panel":
        raw["panels"]["default"]["quorum"] = quorum
    else:
        raw["protocol"] = {"quorum": quorum}

    assert expected in config_error(tmp_path, raw)


def test_scripted_model_without_script_is_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["jurors"][1] = {"name": "claude", "model": "scripted", "family": "anthropic"}

    message = config_error(tmp_path, raw)

    assert "jurors.1" in message
    assert "'claude' uses model 'scripted' but has no 'script' block" in message


def test_script_on_a_real_model_is_refused(tmp_path: Path) -> None:
    raw = base_config()
    raw["jurors"][0]["script"] = {"rounds": [{"position": "yes"}]}

    assert "'gpt' has a 'script' block but model 'openai/gpt-4o-mini'" in config_error(
        tmp_path, raw
    )


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    raw = base_config()
    raw["judges"][0]["name"] = "gpt"

    assert "model name 'gpt' is defined twice" in config_error(tmp_path, raw)


def test_juror_listed_twice_in_a_panel_is_refused(tmp_path: Path) -> None:
    raw = base_config()
    raw["panels"]["default"]["jurors"] = ["gpt", "claude", "gpt"]

    assert "panel 'default': a juror is listed twice" in config_error(tmp_path, raw)


def test_undefined_default_panel_is_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["default_panel"] = "main"

    assert "default_panel 'main' is not a defined panel" in config_error(tmp_path, raw)


def test_unknown_keys_are_refused_where_they_are(tmp_path: Path) -> None:
    raw = base_config()
    raw["protocol"] = {"max_round": 3}

    assert "protocol.max_round" in config_error(tmp_path, raw)


@pytest.mark.parametrize(
    ("options", "problem"),
    [(["yes"], "2 to 10 labels"), (["yes", "YES"], "distinct")],
)
def test_bad_default_options_are_refused(tmp_path: Path, options: list[str], problem: str) -> None:
    raw = base_config()
    raw["protocol"] = {"default_options": options}

    message = config_error(tmp_path, raw)

    assert "protocol.default_options" in message
    assert problem in message


def test_bad_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "jury.yaml"
    path.write_text("jurors: [unclosed\n  panels: {", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    assert "not valid YAML" in caught.value.detail
    assert str(path) in caught.value.detail


@pytest.mark.parametrize("content", ["", "- just\n- a list\n", "42\n"])
def test_yaml_that_is_not_a_mapping_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "jury.yaml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    assert str(path) in caught.value.detail


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    assert caught.value.detail == f"config file not found: {path}"
