"""Commands that call no model start no local server: a reviewer's ``jury trust stats`` or an
operator's ``jury verdicts list`` on the default local panel neither waits for four
llama-servers nor needs the local extra."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli.main import app

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "jury.yaml"
# Ports of their own, so that a server another test started cannot answer for these.
PORT_BASE = 8591


def _local_panel_on_own_ports(tmp_path: Path) -> tuple[Path, list[int]]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    ports = []
    for index, model in enumerate([*config["jurors"], *config["judges"]]):
        model["local"]["port"] = PORT_BASE + index
        ports.append(PORT_BASE + index)
    path = tmp_path / "jury.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, ports


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "command", [["trust", "stats", "--json"], ["trust", "weights"], ["verdicts", "list"]]
)
def test_a_command_that_calls_no_model_starts_no_local_server(
    command: list[str], sqlite_database: str, tmp_path: Path
) -> None:
    config, ports = _local_panel_on_own_ports(tmp_path)

    result = CliRunner().invoke(
        app, [*command, "--config", str(config)], env={"JURY_DATABASE_URL": sqlite_database}
    )

    assert result.exit_code == 0, result.output
    assert "local models:" not in result.stderr
    assert not any(_listening(port) for port in ports)
