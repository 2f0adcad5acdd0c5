"""The mock's latency model: how long a response takes to start and to stream.

TTFT = base + parse cost per KB of input the server must process + rehydration cost per KB
loaded from the store + prefill cost per uncached input token, with relative jitter. Output
streams at a token rate; ``preamble_scale`` and ``answer_scale`` set how much of the
scripted model's text a response says (the output lengths). Which bytes count as
"processed" is what separates the transports: a full-context HTTP request is parsed and
tokenised whole; a WebSocket continuation from the connection cache only for its new items;
an HTTP ``previous_response_id`` continuation also rehydrates the stored conversation.
Presets are YAML files (``rig/mock/presets``); a user can pass a path to their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rig.errors import RigError
from rig.protocol.tokens import split_tokens

__all__ = ["LatencyModel", "PresetError", "builtin_presets", "load_preset"]


class PresetError(RigError, ValueError):
    """A latency preset file is missing, malformed or has out-of-range values."""


@dataclass(frozen=True)
class LatencyModel:
    """Parameters of the latency model; all costs are in milliseconds."""

    name: str = "instant"
    description: str = ""
    base_ms: float = 0.0
    parse_ms_per_kb: float = 0.0
    rehydrate_ms_per_kb: float = 0.0
    prefill_ms_per_1k_tokens: float = 0.0
    tokens_per_s: float = 0.0
    jitter: float = 0.0
    prompt_cache_hit_rate: float = 1.0
    reasoning_tokens: float = 0.0
    """Mean reasoning tokens per response (a reasoning model thinks before it answers);
    their time is part of ``base_ms``, their bytes travel as encrypted reasoning items."""
    preamble_scale: float = 1.0
    """Share of the scripted model's text kept in a response that calls tools (0: the
    calls alone, as a model asked for no preambles answers); the calls are never cut."""
    answer_scale: float = 1.0
    """Share of the scripted model's final answer kept (at least one token)."""

    @property
    def instant(self) -> bool:
        """Whether the model never waits."""
        return (
            self.base_ms == 0
            and self.parse_ms_per_kb == 0
            and self.rehydrate_ms_per_kb == 0
            and self.prefill_ms_per_1k_tokens == 0
            and self.tokens_per_s == 0
        )

    def reasoning_count(self, rng: random.Random) -> int:
        """Reasoning tokens for one response (jittered like the rest)."""
        return round(self._jittered(self.reasoning_tokens, rng))

    def kept_text(self, text: str, *, final: bool) -> str:
        """The part of a scripted text the model says: its first ``answer_scale`` (final
        answer, at least one token) or ``preamble_scale`` (before tool calls) of tokens."""
        scale = self.answer_scale if final else self.preamble_scale
        if scale >= 1.0 or not text:
            return text
        tokens = split_tokens(text)
        keep = round(len(tokens) * scale)
        if final:
            keep = max(1, keep)
        return "".join(tokens[:keep]).rstrip()

    def _jittered(self, value: float, rng: random.Random) -> float:
        if self.jitter <= 0 or value <= 0:
            return value
        return max(0.0, value * (1.0 + rng.gauss(0.0, self.jitter)))

    def ttft_s(
        self,
        processed_bytes: int,
        rehydrated_bytes: int,
        uncached_tokens: int,
        rng: random.Random,
    ) -> float:
        """Seconds from request arrival to the first output token."""
        ms = (
            self.base_ms
            + self.parse_ms_per_kb * processed_bytes / 1024
            + self.rehydrate_ms_per_kb * rehydrated_bytes / 1024
            + self.prefill_ms_per_1k_tokens * uncached_tokens / 1000
        )
        return self._jittered(ms, rng) / 1000.0

    def token_interval_s(self, rng: random.Random) -> float:
        """Seconds between output tokens for one response (0 = as fast as possible)."""
        if self.tokens_per_s <= 0:
            return 0.0
        return 1.0 / max(1.0, self._jittered(self.tokens_per_s, rng))

    def as_dict(self) -> dict[str, Any]:
        """The parameters, for reports."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_NUMBERS = [f.name for f in fields(LatencyModel) if f.type in ("float", float)]


def _validate(data: Any, source: str) -> LatencyModel:
    if not isinstance(data, dict):
        raise PresetError(f"{source}: expected a mapping of latency parameters")
    known = {f.name for f in fields(LatencyModel)}
    unknown = sorted(set(data) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise PresetError(f"{source}: unknown field(s) {', '.join(unknown)}; known fields: {names}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _NUMBERS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PresetError(f"{source}: {key}: expected a number, got {value!r}")
            if value < 0:
                raise PresetError(f"{source}: {key}: must be >= 0, got {value}")
            values[key] = float(value)
        else:
            values[key] = str(value)
    for share in ("prompt_cache_hit_rate", "preamble_scale", "answer_scale"):
        if values.get(share, 1.0) > 1.0:
            raise PresetError(f"{source}: {share}: must be between 0 and 1")
    return LatencyModel(**values)


def builtin_presets() -> dict[str, LatencyModel]:
    """The presets shipped with the rig, by name."""
    presets = {}
    for entry in resources.files("rig.mock").joinpath("presets").iterdir():
        if entry.name.endswith(".yaml"):
            model = _validate(yaml.safe_load(entry.read_text()), entry.name)
            presets[model.name] = model
    return presets


def load_preset(name_or_path: str) -> LatencyModel:
    """A built-in preset by name, or a preset file by path."""
    presets = builtin_presets()
    if name_or_path in presets:
        return presets[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise PresetError(
            f"unknown latency preset {name_or_path!r}: use one of {', '.join(sorted(presets))} "
            "or the path of a YAML file"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PresetError(f"{path}: not valid YAML: {exc}") from None
    return _validate(data, str(path))
