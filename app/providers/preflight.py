"""Start-up checks of the models a config names: credentials and Ollama models present.

Failing here, with a message naming the model and the fix, beats a verdict full of ``auth``
failures later.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.core.config import JuryConfig, ModelSpec
from app.core.errors import ConfigError

OLLAMA_PREFIXES = ("ollama/", "ollama_chat/")
OLLAMA_DEFAULT_HOST = "http://127.0.0.1:11434"


def check_hosted_credentials(config: JuryConfig, environ: Mapping[str, str]) -> None:
    """Fail when a hosted model has neither ``api_key_env`` nor litellm's default key set."""
    hosted = [
        spec
        for spec in config.models()
        if spec.is_hosted and spec.api_key_env is None and not _is_ollama(spec)
    ]
    if not hosted:
        return
    # litellm is heavy: imported only when a hosted model needs checking.
    from app.providers.litellm_provider import missing_credentials

    for spec in hosted:
        missing = missing_credentials(spec.model, dict(environ))
        if missing:
            raise ConfigError(
                f"'{spec.name}' ({spec.model}) needs {' or '.join(missing)} in the environment, "
                "or api_key_env naming the variable that holds its key"
            )


async def check_ollama_models(config: JuryConfig) -> None:
    """Fail when an Ollama-served model is not pulled, saying how to pull it."""
    from ollama import AsyncClient

    for spec in config.models():
        if not _is_ollama(spec):
            continue
        host = spec.api_base or OLLAMA_DEFAULT_HOST
        wanted = spec.model.split("/", 1)[1]
        try:
            listing = await AsyncClient(host=host, timeout=5).list()
        except Exception as exc:
            raise ConfigError(
                f"'{spec.name}' ({spec.model}): Ollama at {host} is not reachable "
                f"({type(exc).__name__}); start it with `ollama serve`"
            ) from exc
        present = {model.model for model in listing.models if model.model}
        if wanted not in present and f"{wanted}:latest" not in present:
            raise ConfigError(
                f"'{spec.name}' ({spec.model}): model '{wanted}' is not present in Ollama at "
                f"{host}; pull it with `ollama pull {wanted}`"
            )


def _is_ollama(spec: ModelSpec) -> bool:
    return spec.model.startswith(OLLAMA_PREFIXES)
