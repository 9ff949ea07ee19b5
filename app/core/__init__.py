"""Cross-cutting infrastructure: settings, configuration, database, errors, metrics, logging."""
