"""Model providers: the only place that talks to models (litellm, local servers, scripts)."""
