"""The link model: delays, serialisation, slow start, idle restart, loss, outages, profiles
and mixes, on a fake clock (the model sleeps nowhere: it is handed times)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from rig.loadgen.link import (
    DIRECT,
    SYN_RTO_S,
    Link,
    LinkError,
    LinkMix,
    LinkProfile,
    LinkReset,
    Outage,
    builtin_links,
    link_mix,
    load_link,
    parse_links,
)
from rig.options import RunOptions, add_arguments, to_argv

MSS = 1000
IW = 10 * MSS


def profile(**changes: object) -> LinkProfile:
    """A clean link: 8 Mbit/s each way (1,000 bytes per ms), 100 ms, no jitter or loss."""
    base = LinkProfile("test", 8e6, 8e6, 0.1, mss=MSS, initial_window=10)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def connection(link_profile: LinkProfile, *, at: float = 0.0, seed: int = 0):
    """A connection whose handshake began at ``at``; the link's clock reads 0."""
    link = Link(link_profile, seed=seed, clock=lambda: 0.0)
    conn = link.connection()
    conn.handshake(at)
    return link, conn


class ScriptedRandom:
    """Random draws in a given order (each ``random()`` the next value)."""

    def __init__(self, *values: float):
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if self.values else 0.999

    def uniform(self, low: float, high: float) -> float:
        return (low + high) / 2


def test_the_tcp_handshake_takes_one_round_trip() -> None:
    link = Link(profile(), clock=lambda: 0.0)
    assert link.connection().handshake(5.0) == pytest.approx(5.1)


def test_a_lost_syn_costs_linux_s_one_second_syn_timeout() -> None:
    link = Link(profile(loss=0.5), clock=lambda: 0.0)
    link.rng = ScriptedRandom(0.1, 0.9, 0.9, 0.9)  # type: ignore[assignment]  # SYN lost, then ok
    assert link.connection().handshake(0.0) == pytest.approx(SYN_RTO_S + 0.1)


def test_a_write_leaves_after_serialisation_and_its_answer_arrives_a_round_trip_later() -> None:
    _, conn = connection(profile())
    left = conn.send(5_000, 1.0)
    assert left == pytest.approx(1.005)  # 5,000 bytes at 1,000 bytes/ms
    # The server answered at once: 2,000 bytes, one round trip and their serialisation.
    assert conn.receive(2_000, left) == pytest.approx(left + 0.1 + 0.002)


def test_back_to_back_writes_queue_behind_each_other() -> None:
    _, conn = connection(profile())
    first = conn.send(4_000, 1.0)
    second = conn.send(4_000, 1.0)  # written at the same moment: waits for the first
    assert first == pytest.approx(1.004)
    assert second == pytest.approx(1.008)


def test_slow_start_sends_the_initial_window_then_doubles_each_round_trip() -> None:
    fast = profile(uplink_bps=8e9)  # serialisation negligible: rounds only
    _, conn = connection(fast)
    # 10 + 20 + 40 segments fit in three rounds: 70,000 bytes need two waits.
    assert conn.send(70 * MSS, 1.0) == pytest.approx(1.2, abs=1e-3)
    _, conn = connection(fast)
    assert conn.send(IW, 1.0) == pytest.approx(1.0, abs=1e-3)  # the initial window: no wait
    _, conn = connection(fast)
    assert conn.send(IW + 1, 1.0) == pytest.approx(1.1, abs=1e-3)  # one byte more: a round


def test_once_the_window_is_open_the_link_rate_bounds_a_transfer() -> None:
    _, conn = connection(profile())
    conn.send(200 * MSS, 1.0)  # opens the window beyond the bandwidth-delay product
    began = conn.up.free_at + 0.05  # idle for less than the RTO (0.3 s): no restart
    assert conn.send(100 * MSS, began) == pytest.approx(began + 0.1)  # 100,000 bytes at 1/ms


def test_after_an_idle_period_longer_than_the_rto_slow_start_restarts() -> None:
    fast = profile(uplink_bps=8e9)
    _, conn = connection(fast)
    conn.send(500 * MSS, 1.0)  # a large window
    quick = conn.send(70 * MSS, conn.up.free_at + 0.05)  # idle 50 ms: the window stays
    assert quick - (conn.up.last_sent or 0) < 1e-3
    idle_start = conn.up.free_at + 5.0  # idle 5 s, beyond the RTO (0.3 s)
    assert conn.send(70 * MSS, idle_start) == pytest.approx(idle_start + 0.2, abs=1e-3)


def test_without_slow_start_after_idle_the_window_survives_idle_time() -> None:
    fast = profile(uplink_bps=8e9, slow_start_after_idle=False)
    _, conn = connection(fast)
    conn.send(500 * MSS, 1.0)
    idle_start = conn.up.free_at + 5.0
    assert conn.send(70 * MSS, idle_start) == pytest.approx(idle_start, abs=1e-3)


def test_the_rto_is_the_round_trip_plus_linux_s_minimum() -> None:
    assert profile().rto_s == pytest.approx(0.3)
    assert profile(jitter_s=0.1).rto_s == pytest.approx(0.1 + 0.4)


def test_a_lost_packet_costs_a_retransmission_timeout_and_collapses_the_window() -> None:
    link, conn = connection(profile(loss=0.01))
    link.rng = ScriptedRandom(0.001, 0.5)  # type: ignore[assignment]  # lost, then through
    assert conn.send(1_000, 1.0) == pytest.approx(1.001 + 0.3)
    assert conn.up.cwnd == MSS
    assert conn.up.ssthresh == 5 * MSS


def test_a_retransmission_lost_again_waits_twice_as_long() -> None:
    link, conn = connection(profile(loss=0.01))
    link.rng = ScriptedRandom(0.001, 0.001, 0.5)  # type: ignore[assignment]
    assert conn.send(1_000, 1.0) == pytest.approx(1.001 + 0.3 + 0.6)


def test_loss_is_per_packet_so_larger_writes_are_lost_more_often() -> None:
    link = Link(profile(loss=0.01), seed=7, clock=lambda: 0.0)

    def lost(nbytes: int) -> float:
        """The share of writes (each on a new connection) that waited a time-out."""
        late = 0
        for _ in range(2000):
            conn = link.connection()
            late += conn.send(nbytes, 1.0) - 1.0 > 0.25
        return late / 2000

    small, large = lost(1_000), lost(20 * MSS)
    assert 0.005 < small < 0.02  # 1 packet: 1%
    assert 0.13 < large < 0.24  # 20 packets: 1 - 0.99**20 = 18%


def test_jitter_varies_delays_around_the_round_trip_but_keeps_bytes_in_order() -> None:
    _, conn = connection(profile(jitter_s=0.04), seed=3)
    arrivals = [conn.receive(100, 1.0 + i * 0.001) for i in range(500)]
    assert arrivals == sorted(arrivals)
    delays = [conn.receive(100, 100.0 + i) - (100.0 + i) for i in range(500)]
    assert min(delays) >= 0.08 - 1e-9 and max(delays) <= 0.12 + 1e-3
    assert sum(delays) / len(delays) == pytest.approx(0.1, abs=0.005)


STALL = profile(outage=Outage(every_s=100.0, for_s=10.0, mode="stall"))
RESET = profile(outage=Outage(every_s=100.0, for_s=10.0, mode="reset"))


def outage_of(link: Link) -> tuple[float, float]:
    window = link.outage_around(0.0, 1000.0)
    assert window is not None
    return window


def test_outages_recur_from_a_phase_drawn_from_the_seed() -> None:
    starts = set()
    for seed in range(5):
        link = Link(STALL, seed=seed, clock=lambda: 0.0)
        begins, ends = outage_of(link)
        assert 0.0 <= begins < 100.0 and ends == begins + 10.0
        assert link.outage_around(ends, ends + 89.0) is None
        assert link.outage_around(ends, ends + 91.0) == (begins + 100.0, ends + 100.0)
        starts.add(begins)
    assert len(starts) == 5


def test_in_a_stall_outage_bytes_are_retransmitted_after_it_with_backoff() -> None:
    link, conn = connection(STALL)
    begins, ends = outage_of(link)
    sent = begins + 1.0
    left = conn.send(1_000, sent)
    assert left >= ends  # not before the link is back
    # Retransmissions RTO (0.3 s) apart, doubling: the first after the end gets through.
    tries, rto, at = [], 0.3, sent + 0.001
    while at < ends:
        at += rto
        tries.append(at)
        rto *= 2
    assert left == pytest.approx(tries[-1])


def test_in_a_reset_outage_an_open_connection_is_reset_at_its_start() -> None:
    link, conn = connection(RESET)
    begins, ends = outage_of(link)
    with pytest.raises(LinkReset) as raised:
        conn.receive(1_000, begins + 0.5)
    assert raised.value.at == pytest.approx(begins)
    with pytest.raises(LinkReset):  # the connection stays reset
        conn.send(10, ends + 50)
    fresh = link.connection()
    opened = fresh.handshake(ends + 1.0)
    assert fresh.send(1_000, opened) == pytest.approx(opened + 0.001)


def test_a_connect_during_an_outage_retries_its_syn_until_the_link_is_back() -> None:
    link = Link(RESET, clock=lambda: 0.0)
    begins, ends = outage_of(link)
    opened = link.connection().handshake(begins + 1.0)
    assert opened > ends
    assert opened == pytest.approx(begins + 1.0 + 1 + 2 + 4 + 8 + 0.1)  # SYN back-off


def test_a_reset_outage_cuts_a_transfer_that_would_cross_it() -> None:
    link, conn = connection(RESET)
    begins, _ = outage_of(link)
    with pytest.raises(LinkReset) as raised:
        conn.send(1_000_000, begins - 0.5)  # 1 s of bytes, the outage half-way
    assert raised.value.at == pytest.approx(begins)


def test_a_write_s_bytes_leave_at_the_link_rate_round_by_round_and_all_by_its_end() -> None:
    _, conn = connection(profile())
    _, same = connection(profile())
    departures = conn.departures(70 * MSS, 1.0)
    assert departures.done == pytest.approx(same.send(70 * MSS, 1.0))  # the same model
    assert departures.left_by(1.0) == 0
    assert departures.left_by(1.005) == pytest.approx(5 * MSS, abs=1)  # 1,000 bytes/ms
    # The initial window (10 segments) has left by 10 ms; then nothing until its
    # acknowledgments are back (100 ms), then the next round at the rate.
    assert departures.left_by(1.05) == departures.left_by(1.099) == IW
    assert departures.left_by(1.105) == pytest.approx(IW + 5 * MSS, abs=1)
    assert departures.left_by(departures.done) == 70 * MSS
    times = [1.0 + i * 0.001 for i in range(400)]
    lefts = [departures.left_by(t) for t in times]
    assert lefts == sorted(lefts)


def test_a_lost_packet_holds_back_the_write_s_last_segment_until_its_retransmission() -> None:
    link, conn = connection(profile(loss=0.01))
    link.rng = ScriptedRandom(0.001, 0.5)  # type: ignore[assignment]  # lost, then through
    departures = conn.departures(5 * MSS, 1.0)
    assert departures.done == pytest.approx(1.005 + 0.3)
    assert departures.left_by(1.2) == 4 * MSS
    assert departures.left_by(departures.done) == 5 * MSS


def test_a_reset_outage_says_what_left_of_the_write_before_it() -> None:
    link, conn = connection(RESET)
    begins, _ = outage_of(link)
    with pytest.raises(LinkReset) as raised:
        conn.departures(1_000_000, begins - 0.5)  # the outage half-way
    departures = raised.value.departures
    assert departures is not None
    assert 0 < departures.left_by(raised.value.at) < 1_000_000
    assert departures.left_by(raised.value.at) == departures.left_by(raised.value.at + 100)


# Profiles.

SHIPPED = ("fiber", "cable", "dsl", "lte", "3g", "leo", "geo", "airplane")


def test_every_shipped_profile_loads_with_sensible_values() -> None:
    profiles = builtin_links()
    assert set(SHIPPED) | {"direct"} == set(profiles)
    for name in SHIPPED:
        link = profiles[name]
        assert link.shapes and link.name == name and link.description
        assert 0 < link.uplink_bps <= link.downlink_bps
        assert 0 < link.rtt_s < 2 and 0 <= link.loss < 0.1
        assert (link.mss, link.initial_window, link.rto_min_s) == (1448, 10, 0.2)
    assert not profiles["direct"].shapes and load_link("direct") is DIRECT
    assert profiles["airplane"].outage is not None


def test_every_number_of_a_shipped_profile_says_where_it_comes_from() -> None:
    folder = resources.files("rig.loadgen").joinpath("links")
    for name in SHIPPED:
        for line in folder.joinpath(f"{name}.yaml").read_text().splitlines():
            if re.match(r"\s*\w+:\s*[0-9.]+\s*(#|$)", line):
                assert "#" in line and len(line.split("#", 1)[1].strip()) > 10, (name, line)


def test_a_user_profile_file_loads_by_path_with_linux_defaults(tmp_path: Path) -> None:
    path = tmp_path / "office.yaml"
    path.write_text(
        "downlink_mbps: 50\nuplink_mbps: 10\nrtt_ms: 25\n"
        "outage: {every_s: 60, for_s: 2, mode: reset}\n"
    )
    link = load_link(str(path))
    assert link.name == "office"  # the file's name when it gives none
    assert (link.downlink_bps, link.uplink_bps, link.rtt_s) == (50e6, 10e6, 0.025)
    assert link.outage == Outage(60.0, 2.0, "reset")
    assert link.initial_window == 10 and link.slow_start_after_idle


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("rtt_ms: [1", "not valid YAML"),
        ("- 1\n- 2", "expected a mapping"),
        ("downlink_mbps: 1\nuplink_mbps: 1", "missing field(s) rtt_ms"),
        ("downlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5\nbandwidth: 3", "unknown field(s) bandwidth"),
        (
            "downlink_mbps: 0\nuplink_mbps: 1\nrtt_ms: 5",
            "downlink_mbps: must be a finite number > 0",
        ),
        ("downlink_mbps: 1\nuplink_mbps: fast\nrtt_ms: 5", "uplink_mbps: expected a number"),
        ("downlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: -5", "rtt_ms: must be a finite number >= 0"),
        ("downlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5\nloss: 1", "loss: a probability below 1"),
        ("downlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5\nmss: 0", "mss: expected an integer >= 1"),
        (
            "downlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5\noutage: {every_s: 5, for_s: 5}",
            "for_s (5) must be shorter than every_s",
        ),
        (
            "downlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5\noutage: {every_s: 9, for_s: 1, mode: x}",
            "outage.mode: stall or reset",
        ),
        ("name: direct\ndownlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5", "reserved"),
        ("name: my link\ndownlink_mbps: 1\nuplink_mbps: 1\nrtt_ms: 5", "without spaces"),
    ],
)
def test_a_bad_profile_file_is_named_with_what_is_wrong(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(LinkError, match=re.escape(words)) as raised:
        load_link(str(path))
    assert str(path) in str(raised.value)


def test_an_unknown_link_lists_the_shipped_ones() -> None:
    with pytest.raises(LinkError, match=r"unknown link 'modem'.*airplane.*path of a YAML"):
        load_link("modem")


# Mixes.


def test_a_mix_gives_each_session_one_link_in_proportion_and_the_same_every_time() -> None:
    mix = parse_links("cable=70,lte=20,airplane=10")
    assert mix.names == ["cable", "lte", "airplane"]
    picks = [mix.pick(index, seed=4).name for index in range(1000)]
    assert picks == [mix.pick(index, seed=4).name for index in range(1000)]
    counts = Counter(picks)
    assert counts["cable"] == pytest.approx(700, abs=15)
    assert counts["lte"] == pytest.approx(200, abs=15)
    assert counts["airplane"] == pytest.approx(100, abs=15)
    first_ten = Counter(picks[:10])  # even a few sessions come close to the shares
    assert first_ten["cable"] in (6, 7, 8) and first_ten["airplane"] in (0, 1, 2)


def test_one_link_or_none_gives_every_session_that_link() -> None:
    assert {link_mix(link="geo").pick(i).name for i in range(50)} == {"geo"}
    assert link_mix().pick(3) is DIRECT
    assert isinstance(link_mix(links="direct=1,lte=1"), LinkMix)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cable=70,modem=30", "unknown link 'modem'"),
        ("cable=70,lte=x", "the weight of 'lte' is not a number"),
        ("cable=0,lte=1", "the weight of 'cable' must be > 0"),
        ("cable=-1", "must be > 0"),
        ("cable=nan", "must be > 0"),
        ("cable", "is not NAME=WEIGHT"),
        ("=3", "is not NAME=WEIGHT"),
        ("cable=1,,lte=1", "an empty entry"),
        ("cable=1,cable=2", "'cable' is given twice"),
    ],
)
def test_a_bad_mix_is_named_with_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(LinkError, match=re.escape(words)):
        parse_links(text)


def test_link_and_links_together_are_refused() -> None:
    with pytest.raises(LinkError, match="not both"):
        link_mix(link="lte", links="lte=1")


def test_the_options_check_links_when_parsed_and_pass_them_to_a_child() -> None:
    parser = argparse.ArgumentParser(prog="rig compare", exit_on_error=False)
    add_arguments(parser, "compare")
    options = RunOptions.from_namespace(parser.parse_args(["--links", "lte=1,geo=3"]))
    assert options.links == "lte=1,geo=3" and options.link == ""
    assert to_argv(options.replace(link="airplane"), "locust")[-4:] == [
        "--link",
        "airplane",
        "--links",
        "lte=1,geo=3",
    ]
    with pytest.raises(argparse.ArgumentError, match="unknown link 'modem'"):
        parser.parse_args(["--link", "modem"])
    assert math.isinf(DIRECT.uplink_bps)
