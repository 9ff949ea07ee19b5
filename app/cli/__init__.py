"""The command-line edge: every typer app (`jury ...`), calling the same services."""
