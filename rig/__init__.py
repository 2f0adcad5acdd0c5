"""Agentic load rig: measure stateless HTTP vs stateful WebSocket continuation for LLM agents."""

__version__ = "0.1.0"
