"""The HTTP edge: every router, page and HTTP dependency."""
