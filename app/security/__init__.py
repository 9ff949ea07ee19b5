"""API keys with roles, the authenticated caller, and spend caps per key."""
