"""Performance benchmarks: a fake OpenAI-compatible upstream, a load generator, ``jury bench``."""
