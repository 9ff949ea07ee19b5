"""Jury's typed Python client and the gate for agent code.

from app.client import JuryClient, gate

jury = JuryClient("http://127.0.0.1:8000", api_key=os.environ.get("JURY_API_KEY"))
with gate(jury, category="deploy", question="Ship 4.2?", action={"tool": "deploy",
          "arguments": {"version": "4.2"}}):
    deploy("4.2")
"""

from app.client.client import DEFAULT_TIMEOUT, AsyncJuryClient, JuryClient, Outcome
from app.client.errors import (
    APIError,
    Escalated,
    GateRefused,
    JuryClientError,
    NoQuorum,
    ProtocolError,
    Rejected,
    TransportError,
)
from app.client.gate import async_gate, check, gate

__all__ = [
    "DEFAULT_TIMEOUT",
    "APIError",
    "AsyncJuryClient",
    "Escalated",
    "GateRefused",
    "JuryClient",
    "JuryClientError",
    "NoQuorum",
    "Outcome",
    "ProtocolError",
    "Rejected",
    "TransportError",
    "async_gate",
    "check",
    "gate",
]
