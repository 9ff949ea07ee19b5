"""Jury as an MCP server: the tools agents call, over stdio (``jury mcp``) and HTTP (``/mcp``).

``schemas`` holds the tools' arguments and results, ``tools`` what each tool does with the same
services as the REST API, and ``server`` the one module that speaks the MCP SDK.
"""
