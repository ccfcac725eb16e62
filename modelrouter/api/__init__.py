"""The HTTP surface: OpenAI-compatible chat and models, prompts, health."""
