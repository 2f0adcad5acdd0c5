"""Link profiles and the model of one session's network link, with no I/O.

A :class:`LinkProfile` describes a link (fibre, cable, LTE, a satellite, an aeroplane's
wifi): its rates each way, round-trip time, jitter, loss, outages and the TCP settings
that matter at an agent's message sizes. Profiles are YAML files (``rig/loadgen/links``,
one per profile; a user passes the path of their own) loaded by :func:`load_link`;
``--links cable=70,lte=20`` is a :class:`LinkMix` that gives each session one of them.

:class:`Link` is one session's link and :class:`LinkConnection` one TCP connection over
it. They compute, from byte counts and times handed in (a clock is injected, nothing
sleeps here), when bytes leave and when they are delivered: the TCP handshake, slow start
from the initial window with restart after idle, serialisation at the link rate, loss as
retransmission time-outs, outages. :class:`~rig.loadgen.wire.ShapedWireSocket` waits what
they say. docs/links.md describes the model and its limits.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from rig.errors import RigError

__all__ = [
    "DIRECT",
    "Departures",
    "Link",
    "LinkConnection",
    "LinkError",
    "LinkMix",
    "LinkProfile",
    "LinkReset",
    "Outage",
    "builtin_links",
    "link_mix",
    "load_link",
    "parse_links",
]

OutageMode = Literal["stall", "reset"]
SYN_RTO_S = 1.0
"""Linux's initial retransmission time-out of a SYN (``TCP_TIMEOUT_INIT``, RFC 6298)."""
RTO_MAX_S = 120.0
"""Linux's largest retransmission time-out (``TCP_RTO_MAX``)."""
MAX_CWND = 64 * 1024 * 1024
"""A bound on the modelled window (beyond any bandwidth-delay product here)."""


class LinkError(RigError, ValueError):
    """A link profile, profile file or ``--links`` mix that cannot be used."""


class LinkReset(RigError, ConnectionResetError):
    """The link reset the connection (an outage of a profile in ``reset`` mode)."""

    def __init__(self, message: str, at: float):
        super().__init__(message)
        self.at = at
        """When the reset reaches the client (the outage's start), on the link's clock."""
        self.departures: Departures | None = None
        """For a write the reset cut short: when its bytes left, up to the reset."""


@dataclass(frozen=True, slots=True)
class Outage:
    """The link goes down for ``for_s`` seconds every ``every_s`` seconds."""

    every_s: float
    for_s: float
    mode: OutageMode = "stall"
    """``stall``: bytes wait (retransmitted after the outage); ``reset``: every connection
    open when it begins is reset."""


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """A network link as the model sees it (rates in bits per second, times in seconds)."""

    name: str
    uplink_bps: float
    downlink_bps: float
    rtt_s: float
    jitter_s: float = 0.0
    """Each delivery's delay varies by up to this, uniformly, around the mean."""
    loss: float = 0.0
    """Probability that a packet (one MSS) is lost."""
    mss: int = 1448
    """Bytes per segment: a 1500-byte MTU less IP, TCP and timestamp headers."""
    initial_window: int = 10
    """Segments a connection may send before its first acknowledgment (RFC 6928, Linux)."""
    rto_min_s: float = 0.2
    """Linux's ``TCP_RTO_MIN``."""
    slow_start_after_idle: bool = True
    """Linux's ``net.ipv4.tcp_slow_start_after_idle`` (on by default)."""
    outage: Outage | None = None
    description: str = ""

    @property
    def shapes(self) -> bool:
        """Whether this link is shaped at all (``direct`` is not)."""
        return self.name != DIRECT_NAME

    @property
    def rto_s(self) -> float:
        """The retransmission time-out: Linux sets it to the smoothed RTT plus four mean
        deviations, at least ``rto_min``; the jitter stands in for the deviation."""
        return min(RTO_MAX_S, self.rtt_s + max(self.rto_min_s, 4 * self.jitter_s))

    def as_dict(self) -> dict[str, Any]:
        """The parameters, for meta.json and reports."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.outage is not None:
            values["outage"] = {f.name: getattr(self.outage, f.name) for f in fields(Outage)}
        return values


DIRECT_NAME = "direct"
DIRECT = LinkProfile(DIRECT_NAME, math.inf, math.inf, 0.0, description="no shaping")
"""No link emulation: the loopback or real network as it is (the default)."""


class Link:
    """One session's link: its profile, its random draws and its outage schedule.

    Every connection the session opens is a :meth:`connection` sharing this state (one
    random stream, one outage schedule) with its own congestion windows. ``clock`` is the
    time the outage schedule runs on (``time.monotonic`` for real; tests pass a fake one).
    """

    __slots__ = ("_origin", "clock", "profile", "rng")

    def __init__(
        self,
        profile: LinkProfile,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.profile = profile
        self.clock = clock
        self.rng = random.Random(seed)
        outage = profile.outage
        # Sessions do not all lose the link at once: each starts at its own point of the cycle.
        phase = self.rng.uniform(0.0, outage.every_s) if outage is not None else 0.0
        self._origin = clock() + phase

    def connection(self) -> LinkConnection:
        """A new TCP connection over this link (its handshake not yet made)."""
        return LinkConnection(self)

    def outage_around(self, start: float, end: float) -> tuple[float, float] | None:
        """The first outage ``(begins, ends)`` overlapping ``[start, end]``, or ``None``."""
        outage = self.profile.outage
        if outage is None:
            return None
        # Outage k runs over [origin + k * every, origin + k * every + for): the first that
        # ends after ``start``.
        k = max(0, math.floor((start - self._origin - outage.for_s) / outage.every_s) + 1)
        begins = self._origin + k * outage.every_s
        return (begins, begins + outage.for_s) if begins <= end else None

    def outage_begun(self, since: float, now: float) -> float | None:
        """When the first outage beginning in ``[since, now]`` began, or ``None``."""
        outage = self.profile.outage
        if outage is None:
            return None
        k = math.ceil((since - self._origin) / outage.every_s) if since > self._origin else 0
        begins = self._origin + k * outage.every_s
        return begins if begins <= now else None

    def delay(self) -> float:
        """One delivery's propagation delay: the round trip (both ways: see
        :meth:`LinkConnection.send`) with its jitter."""
        profile = self.profile
        if profile.jitter_s <= 0:
            return profile.rtt_s
        return max(0.0, profile.rtt_s + self.rng.uniform(-0.5, 0.5) * profile.jitter_s)

    def retransmitted(self, sent: float, down: tuple[float, float] | None) -> float:
        """When a packet first sent at ``sent`` gets through: after a retransmission
        time-out, doubling per retransmission also lost (to the loss, or to the outage
        ``down`` still under way)."""
        profile = self.profile
        rto = profile.rto_s
        at = sent + rto
        for _ in range(64):
            lost = (down is not None and at < down[1]) or self.rng.random() < profile.loss
            if not lost:
                return at
            rto = min(RTO_MAX_S, rto * 2)
            at += rto
            if down is not None and at >= down[1]:
                down = self.outage_around(at, at + profile.rtt_s)
        return at


class _Flow:
    """One direction of one connection: its sender's congestion window and the queue of
    the link in that direction (bytes wait for those before them)."""

    __slots__ = (
        "cwnd",
        "delivered",
        "free_at",
        "last_sent",
        "rate",
        "ssthresh",
        "window_start",
        "window_used",
    )

    def __init__(self, rate_bps: float, initial_window: int, mss: int):
        self.rate = rate_bps / 8  # bytes per second
        self.cwnd = float(initial_window * mss)
        self.ssthresh = float(MAX_CWND)
        self.window_start: float | None = None
        self.window_used = 0.0
        self.free_at = -math.inf
        """When the link in this direction has sent everything queued so far."""
        self.last_sent: float | None = None
        self.delivered = -math.inf
        """When the latest bytes were delivered: TCP delivers in order."""

    def grow(self, acked: float, mss: int) -> None:
        """Acknowledgments of ``acked`` bytes came back: slow start below ``ssthresh``
        (the window grows by what was acknowledged: doubles per round trip when full),
        congestion avoidance above (one segment per window)."""
        if self.cwnd < self.ssthresh:
            self.cwnd = min(self.cwnd + acked, max(self.ssthresh, self.cwnd))
        else:
            self.cwnd += mss * acked / self.cwnd
        self.cwnd = min(self.cwnd, MAX_CWND)

    def restart_after_idle(self, now: float, profile: LinkProfile) -> None:
        """Linux's ``tcp_cwnd_restart``: idle longer than the RTO, the window halves per
        RTO idle, down to the initial window (or what it was, if smaller)."""
        if self.last_sent is None:
            return
        rto = profile.rto_s
        idle = now - self.last_sent
        if idle <= rto:
            return
        restart = min(float(profile.initial_window * profile.mss), self.cwnd)
        halvings = min(int(idle / rto), 60)
        self.cwnd = max(restart, self.cwnd / 2**halvings)
        self.window_start = None
        self.window_used = 0.0

    def lose(self, mss: int) -> None:
        """A retransmission time-out: ``ssthresh`` to half the window, the window to
        one segment (RFC 5681), a new round from there."""
        self.ssthresh = max(self.cwnd / 2, 2.0 * mss)
        self.cwnd = float(mss)
        self.window_start = None
        self.window_used = 0.0


@dataclass(slots=True)
class Departures:
    """When the bytes of one write leave the client: the write's rounds, each a run of
    bytes leaving at the link's rate, and when its last byte has left (``done``: later
    than the last round's end after a loss, which holds back the write's end until its
    retransmission). :class:`~rig.loadgen.wire.ShapedWireSocket` writes each piece to the
    kernel when it has left, so what a write cut short sent is on the wire and counted."""

    nbytes: int
    done: float = 0.0
    runs: list[tuple[float, float, float, float]] = dataclasses.field(default_factory=list)
    """``(departs, rate, first byte's offset, bytes)`` of each run, in order."""
    stalled: float = math.inf
    """When an outage stopped the link (bytes after it leave at ``done``)."""
    held: int = 0
    """Bytes that leave only at ``done`` (what a loss may have cost)."""

    def left_by(self, at: float) -> int:
        """How many of the write's bytes have left by ``at``."""
        if at >= self.done:
            return self.nbytes
        at = min(at, self.stalled)
        left = 0.0
        for departs, rate, offset, size in self.runs:
            if at <= departs:
                break
            left = offset + min(size, (at - departs) * rate)
        return max(0, min(int(left), self.nbytes - self.held))


class LinkConnection:
    """One TCP connection over a session's :class:`Link`: the handshake, and when each
    write leaves and each read is delivered.

    The emulation sits at the client only, so a round trip is applied on the way back:
    :meth:`send` says when the bytes have been serialised onto the uplink (the client
    writes them to the kernel then, and the server reads them at once), and
    :meth:`receive` delivers what the server sent one full round trip (plus jitter,
    downlink serialisation and slow start) after the server sent it. The server thus runs
    half a round trip early; every exchange the client sees - TLS, the WebSocket upgrade,
    a request and its streamed answer - takes its true time, and none is counted twice.
    """

    __slots__ = ("down", "link", "opened", "reset_at", "up")

    def __init__(self, link: Link):
        self.link = link
        profile = link.profile
        self.up = _Flow(profile.uplink_bps, profile.initial_window, profile.mss)
        self.down = _Flow(profile.downlink_bps, profile.initial_window, profile.mss)
        self.opened = -math.inf
        self.reset_at: float | None = None

    def handshake(self, now: float) -> float:
        """When the TCP handshake begun at ``now`` completes (SYN up, SYN-ACK down: one
        round trip; a lost SYN or SYN-ACK, or an outage, costs a SYN time-out of 1 s,
        doubling). TLS and the WebSocket upgrade are ordinary exchanges afterwards."""
        link, profile = self.link, self.link.profile
        sent, rto = now, SYN_RTO_S
        for _ in range(16):
            arrives = sent + link.delay()
            down = link.outage_around(sent, arrives)
            syn_lost = link.rng.random() < profile.loss
            syn_ack_lost = link.rng.random() < profile.loss
            if down is None and not syn_lost and not syn_ack_lost:
                break
            sent += rto
            rto = min(RTO_MAX_S, rto * 2)
        self.opened = arrives
        return arrives

    def send(self, nbytes: int, now: float) -> float:
        """When ``nbytes`` written at ``now`` have left the client (the time to write them
        to the kernel). Raises :class:`LinkReset` if an outage resets the connection."""
        return self._transmit(self.up, nbytes, now, 0.0)

    def departures(self, nbytes: int, now: float) -> Departures:
        """:meth:`send`, saying when each byte leaves, not only the last. Raises
        :class:`LinkReset` (with ``departures`` set: what left before the reset)."""
        departures = Departures(nbytes)
        try:
            departures.done = self._transmit(self.up, nbytes, now, 0.0, departures)
        except LinkReset as exc:
            departures.done = math.inf
            exc.departures = departures
            raise
        return departures

    def receive(self, nbytes: int, now: float) -> float:
        """When ``nbytes`` the server sent at ``now`` (read from the kernel now) reach the
        client. Raises :class:`LinkReset` if an outage resets the connection."""
        return self._transmit(self.down, nbytes, now, self.link.delay())

    def _transmit(
        self,
        flow: _Flow,
        nbytes: int,
        now: float,
        delay: float,
        departures: Departures | None = None,
    ) -> float:
        link, profile = self.link, self.link.profile
        self._check_reset(now)
        if profile.slow_start_after_idle:
            flow.restart_after_idle(now, profile)
        t, remaining, first = now, float(nbytes), None
        rtt = profile.rtt_s
        while remaining > 0:
            if flow.window_start is None or t >= flow.window_start + rtt:
                if flow.window_start is not None:  # the last round's acknowledgments are in
                    flow.grow(flow.window_used, profile.mss)
                # A round runs from its first byte's departure to that byte's acknowledgment.
                flow.window_start, flow.window_used = max(t, flow.free_at), 0.0
            room = flow.cwnd - flow.window_used
            if room <= 0:
                t = flow.window_start + rtt  # wait for acknowledgments
                continue
            take = min(remaining, room)
            departs = max(t, flow.free_at)
            first = departs if first is None else first
            if departures is not None:
                departures.runs.append((departs, flow.rate, nbytes - remaining, take))
            flow.free_at = departs + take / flow.rate
            flow.window_used += take
            remaining -= take
        sent = flow.free_at if first is not None else now
        flow.last_sent = sent
        first = now if first is None else first
        # Loss: one retransmission time-out if any of the write's packets is lost.
        packets = max(1, math.ceil(nbytes / profile.mss))
        arrives = sent + delay
        if profile.loss > 0 and link.rng.random() < 1 - (1 - profile.loss) ** packets:
            if departures is not None:  # the lost packet: the write's last, at the latest
                departures.held = min(nbytes, profile.mss)
            sent = link.retransmitted(sent, None)
            flow.lose(profile.mss)
            arrives = sent + delay
        down = link.outage_around(first, max(arrives, sent + rtt / 2))
        if down is not None:
            if departures is not None:
                departures.stalled = down[0]
            outage = profile.outage
            if outage is not None and outage.mode == "reset":
                self.reset_at = max(down[0], now)
                self._check_reset(self.reset_at)
            sent = link.retransmitted(max(sent, down[0]), down)
            flow.lose(profile.mss)
            arrives = sent + delay
        if delay == 0.0:  # the uplink: the client writes when the bytes have left
            return sent
        flow.delivered = max(flow.delivered, arrives)  # in order
        return flow.delivered

    def _check_reset(self, now: float) -> None:
        """Raise :class:`LinkReset` once an outage in ``reset`` mode has begun since the
        connection opened (for every call after it, too: the connection is gone)."""
        outage = self.link.profile.outage
        if outage is None or outage.mode != "reset":
            return
        if self.reset_at is None:
            self.reset_at = self.link.outage_begun(self.opened, now)
            if self.reset_at is None:
                return
        if self.reset_at <= now:
            raise LinkReset(
                f"connection reset by the {self.link.profile.name} link's outage", self.reset_at
            )


# Profiles: the shipped files and the user's.

_SECONDS = {"rtt_ms": "rtt_s", "jitter_ms": "jitter_s", "rto_min_ms": "rto_min_s"}
_RATES = {"uplink_mbps": "uplink_bps", "downlink_mbps": "downlink_bps"}
_REQUIRED = ("uplink_mbps", "downlink_mbps", "rtt_ms")
_KNOWN = (
    "name",
    "description",
    *_RATES,
    *_SECONDS,
    "loss",
    "mss",
    "initial_window",
    "slow_start_after_idle",
    "outage",
)


def _number(source: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise LinkError(f"{source}: {key}: expected a number, got {value!r}")
    if value < 0 or (positive and value == 0) or math.isinf(value):
        bound = "> 0" if positive else ">= 0"
        raise LinkError(f"{source}: {key}: must be a finite number {bound}, got {value}")
    return float(value)


def _outage(source: str, data: Any) -> Outage:
    if not isinstance(data, Mapping):
        raise LinkError(f"{source}: outage: expected a mapping (every_s, for_s, mode)")
    unknown = sorted(set(data) - {"every_s", "for_s", "mode"})
    if unknown:
        raise LinkError(f"{source}: outage: unknown field(s) {', '.join(map(str, unknown))}")
    for key in ("every_s", "for_s"):
        if key not in data:
            raise LinkError(f"{source}: outage: {key} is required")
    every = _number(source, "outage.every_s", data["every_s"], positive=True)
    length = _number(source, "outage.for_s", data["for_s"], positive=True)
    if length >= every:
        raise LinkError(f"{source}: outage: for_s ({length:g}) must be shorter than every_s")
    mode = data.get("mode", "stall")
    if mode not in ("stall", "reset"):
        raise LinkError(f"{source}: outage.mode: stall or reset, got {mode!r}")
    return Outage(every, length, mode)


def parse_profile(data: Any, source: str, default_name: str) -> LinkProfile:
    """A profile from a YAML document's data (``source`` names it in errors)."""
    if not isinstance(data, Mapping):
        raise LinkError(f"{source}: expected a mapping of link parameters")
    unknown = sorted(str(key) for key in set(data) - set(_KNOWN))
    if unknown:
        raise LinkError(
            f"{source}: unknown field(s) {', '.join(unknown)}; known fields: {', '.join(_KNOWN)}"
        )
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise LinkError(f"{source}: missing field(s) {', '.join(missing)}")
    name = str(data.get("name", default_name)).strip()
    if not name or any(c in name for c in ",= \t"):
        raise LinkError(f"{source}: name {name!r}: give a word without spaces, commas or '='")
    if name == DIRECT_NAME:
        raise LinkError(f"{source}: the name {DIRECT_NAME!r} is reserved for no shaping")
    values: dict[str, Any] = {"name": name, "description": str(data.get("description", ""))}
    for key, field in _RATES.items():
        values[field] = _number(source, key, data[key], positive=True) * 1_000_000
    for key, field in _SECONDS.items():
        if key in data:
            values[field] = _number(source, key, data[key]) / 1000
    if "loss" in data:
        values["loss"] = _number(source, "loss", data["loss"])
        if values["loss"] >= 1:
            raise LinkError(f"{source}: loss: a probability below 1, got {data['loss']}")
    for key in ("mss", "initial_window"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LinkError(f"{source}: {key}: expected an integer >= 1, got {value!r}")
            values[key] = value
    if "slow_start_after_idle" in data:
        if not isinstance(data["slow_start_after_idle"], bool):
            raise LinkError(f"{source}: slow_start_after_idle: true or false")
        values["slow_start_after_idle"] = data["slow_start_after_idle"]
    if data.get("outage") is not None:
        values["outage"] = _outage(source, data["outage"])
    return LinkProfile(**values)


def _read(text: str, source: str, default_name: str) -> LinkProfile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LinkError(f"{source}: not valid YAML: {exc}") from None
    return parse_profile(data, source, default_name)


def builtin_links() -> dict[str, LinkProfile]:
    """The profiles shipped with the rig (``rig/loadgen/links``), by name, and ``direct``."""
    profiles = {DIRECT_NAME: DIRECT}
    for entry in sorted(resources.files("rig.loadgen").joinpath("links").iterdir(), key=str):
        if entry.name.endswith(".yaml"):
            profile = _read(entry.read_text(), entry.name, entry.name.removesuffix(".yaml"))
            profiles[profile.name] = profile
    return profiles


def load_link(name_or_path: str) -> LinkProfile:
    """A shipped profile by name (``direct``: none), or a profile file by path."""
    profiles = builtin_links()
    text = name_or_path.strip()
    if text in profiles:
        return profiles[text]
    path = Path(text)
    if not path.is_file():
        raise LinkError(
            f"unknown link {text!r}: use one of {', '.join(profiles)} or the path of a YAML "
            "profile file (docs/links.md)"
        )
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LinkError(f"{path}: cannot be read: {exc}") from None
    return _read(content, str(path), path.stem)


@dataclass(frozen=True, slots=True)
class LinkMix:
    """Links by weight: each session gets one, the same for the same index and seed."""

    choices: tuple[tuple[LinkProfile, float], ...] = ((DIRECT, 1.0),)

    def pick(self, index: int, seed: int = 0) -> LinkProfile:
        """Session ``index``'s link. Successive indexes walk the weights by the golden
        ratio, so any run of sessions gets close to the mix's shares (user k of every
        transport gets the same link, as it gets the same tasks)."""
        if len(self.choices) == 1:
            return self.choices[0][0]
        offset = random.Random(seed).random()
        point = (index * 0.6180339887498949 + offset) % 1.0
        total = sum(weight for _, weight in self.choices)
        running = 0.0
        for profile, weight in self.choices:
            running += weight / total
            if point < running:
                return profile
        return self.choices[-1][0]

    @property
    def names(self) -> list[str]:
        """The links of the mix, in order."""
        return [profile.name for profile, _ in self.choices]


def parse_links(text: str) -> LinkMix:
    """``--links cable=70,lte=20,airplane=10``: names (or profile files) and weights."""
    choices: list[tuple[LinkProfile, float]] = []
    seen: set[str] = set()
    example = "e.g. cable=70,lte=20,airplane=10"
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            raise LinkError(f"--links {text!r}: an empty entry; {example}")
        name, equals, weight_text = entry.rpartition("=")
        if not equals or not name.strip():
            raise LinkError(f"--links {text!r}: {entry!r} is not NAME=WEIGHT; {example}")
        try:
            weight = float(weight_text)
        except ValueError:
            raise LinkError(
                f"--links {text!r}: the weight of {name.strip()!r} is not a number: {weight_text!r}"
            ) from None
        if not (weight > 0 and math.isfinite(weight)):
            raise LinkError(f"--links {text!r}: the weight of {name.strip()!r} must be > 0")
        profile = load_link(name)
        if profile.name in seen:
            raise LinkError(f"--links {text!r}: {profile.name!r} is given twice")
        seen.add(profile.name)
        choices.append((profile, weight))
    return LinkMix(tuple(choices))


def link_mix(link: str = "", links: str = "") -> LinkMix:
    """The run's links from ``--link NAME|FILE`` or ``--links MIX`` (not both); neither:
    ``direct``."""
    if link and links:
        raise LinkError("give --link (one link for every session) or --links (a mix), not both")
    if links:
        return parse_links(links)
    if link:
        return LinkMix(((load_link(link), 1.0),))
    return LinkMix()
