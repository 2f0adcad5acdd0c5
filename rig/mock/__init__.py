"""The mock LLM provider: Responses API (HTTP/SSE and WebSocket mode) and Chat Completions."""

from rig.conversation.store import MemoryStore, RedisStore, StoredResponse, open_store
from rig.mock.app import MockSettings, build_app
from rig.mock.engine import TurnEngine
from rig.mock.latency import LatencyModel, PresetError, builtin_presets, load_preset
from rig.mock.server import MockConfig, create_app, serve

__all__ = [
    "LatencyModel",
    "MemoryStore",
    "MockConfig",
    "MockSettings",
    "PresetError",
    "RedisStore",
    "StoredResponse",
    "TurnEngine",
    "build_app",
    "builtin_presets",
    "create_app",
    "load_preset",
    "open_store",
    "serve",
]
