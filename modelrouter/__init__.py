"""modelrouter: a health-aware LLM router with an OpenAI-compatible API and an MCP server."""

__version__ = "0.1.0"
