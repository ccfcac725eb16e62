"""The MCP surface: the router's tools, resources and prompts over MCP.

``server`` builds the SDK server (Streamable HTTP at ``/mcp``, or stdio via
``stdio``); ``tools`` and ``chat`` translate tool calls to and from the front door;
``schemas`` are the typed inputs and outputs the tools declare.
"""
