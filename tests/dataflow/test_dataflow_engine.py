"""The streaming fabric engine: timing of pipelines, backpressure, initiation interval and width,
deadlock and starvation reports."""
import numpy as np
import pytest

from memsim.dataflow import DeadlockError, Fabric, Map, Reduce, Repeat, Sink, Source
from memsim.errors import InputError, ScheduleError
from memsim.hardware.model import ChannelSpec, FabricSpec, FabricUnit


def spec(ii=1, latency=1, width=4, depth=2, ch_latency=1, **extra):
    units = {"map": FabricUnit("map", "map", ii, latency, width),
             "reduce": FabricUnit("reduce", "reduce", 1, 2, width)}
    units.update(extra)
    return FabricSpec(clock_hz=1e9, units=units,
                      channel=ChannelSpec(depth=depth, width=width, latency_cycles=ch_latency))


def pipeline(fabric_spec, n, lanes=4, depth=None, fn=lambda x: 2 * x):
    f = Fabric(fabric_spec)
    a = f.channel("src->map", lanes, depth=depth, intermediate=False)
    b = f.channel("map->out", lanes, depth=depth, intermediate=False)
    tokens = [np.arange(lanes, dtype=float) + i for i in range(n)]
    f.add(Source(f.env, "src", f.timing("source"), lanes, tokens, [a]))
    f.add(Map(f.env, "map", f.timing("map"), lanes, fn, [a], [b]))
    f.add(Sink(f.env, "out", f.timing("sink"), lanes, b, expected=n))
    return f, tokens


def test_pipeline_values_and_exact_cycles():
    # source fires at cycles 0..n-1 (latency 1, channel 1): token i ready at i + 2; the map
    # (latency 3) fires then, its result is ready at i + 2 + 3 + 1; the sink takes it then.
    f, tokens = pipeline(spec(latency=3), n=10)
    run = f.run()
    assert run.cycles == 9 + 2 + 3 + 1
    np.testing.assert_array_equal(np.stack(run.outputs["out"]), 2 * np.stack(tokens))
    assert run.units["map"]["firings"] == 10


def test_backpressure_slow_consumer_fills_fifo_and_sets_rate():
    # a map with initiation interval 4 accepts one token every 4 cycles; the source is held
    # back by the full FIFO, which therefore reaches its depth
    f, _ = pipeline(spec(ii=4), n=20, depth=3)
    run = f.run()
    assert run.units["map"]["cycles_per_firing"] == 4
    assert run.channels["src->map"]["peak_entries"] == 3
    assert run.channels["src->map"]["peak_elements"] == 12
    # map fires at 2, 6, ..., 2 + 4 * 19; its last result is ready 1 + 1 cycles later
    assert run.cycles == 2 + 4 * 19 + 2


def test_width_sets_passes_per_token():
    # 16 lanes through a 4-wide map: 4 passes per token at II 1
    f, _ = pipeline(spec(width=4), n=8, lanes=16)
    run = f.run()
    assert run.units["map"]["cycles_per_firing"] == 4
    assert run.cycles == 2 + 4 * 7 + 2


def test_narrow_channel_serialises_wide_tokens():
    f = Fabric(spec())
    a = f.channel("src->map", 8, width=2, intermediate=False)     # 4 cycles per token
    b = f.channel("map->out", 8, intermediate=False)
    f.add(Source(f.env, "src", f.timing("source"), 8, [np.ones(8)] * 5, [a]))
    f.add(Map(f.env, "map", f.timing("map"), 8, lambda x: x, [a], [b]))
    f.add(Sink(f.env, "out", f.timing("sink"), 8, b, expected=5))
    run = f.run()
    assert run.units["src"]["cycles_per_firing"] == 4
    assert run.units["map"]["cycles_per_firing"] == 4
    # source sends at 0, 4, .., 16; token ready 1 + (4 - 1) + 1 cycles later
    assert run.cycles == 16 + 5 + 2


def join_graph(direct_depth):
    """src forks into a 4-token reduction and a direct path; a map joins sum and tokens.
    The direct FIFO must hold a whole group of 4 tokens, or the graph deadlocks."""
    f = Fabric(spec())
    s_red = f.channel("src->sum", 1, depth=8, intermediate=False)
    s_dir = f.channel("src->join", 1, depth=direct_depth, intermediate=False)
    total = f.channel("sum->join", 1, depth=8)
    out = f.channel("join->out", 1, depth=8, intermediate=False)
    values = [float(i) for i in range(8)]
    f.add(Source(f.env, "src", f.timing("source"), 1, values, [s_red, s_dir]))
    f.add(Reduce(f.env, "sum", f.timing("reduce"), 1, 4, lambda acc, x: acc + x, lambda: 0.0,
                 [s_red], [total]))
    rep = f.channel("rep->join", 1, depth=8)
    f.add(Repeat(f.env, "rep", f.timing("map"), 1, 4, total, [rep]))
    f.add(Map(f.env, "join", f.timing("map"), 1, lambda x, t: x / t, [s_dir, rep], [out]))
    f.add(Sink(f.env, "out", f.timing("sink"), 1, out, expected=8))
    return f, values


def test_join_runs_with_enough_depth():
    f, values = join_graph(direct_depth=4)
    run = f.run()
    expected = [v / sum(values[:4]) for v in values[:4]] + [v / sum(values[4:]) for v in values[4:]]
    assert run.outputs["out"] == pytest.approx(expected, rel=1e-15)


def test_deadlock_reports_full_and_empty_channels_and_the_wait_cycle():
    f, _ = join_graph(direct_depth=3)
    with pytest.raises(DeadlockError, match=r"too shallow: src->join") as info:
        f.run()
    err = info.value
    assert isinstance(err, ScheduleError)          # bad input: exit code 2 on the CLI
    assert err.blocking_channels == ["src->join"]
    assert err.full == {"src->join": "src"}
    assert err.empty["src->sum"] == "sum" and err.empty["rep->join"] == "join"
    assert err.waits["join"] == ("get", "rep->join")
    assert set(err.wait_cycle) == {"src", "join", "rep", "sum"}
    assert "full: src->join (3/3 entries" in str(err)


def test_starvation_is_reported_without_a_wait_cycle():
    f = Fabric(spec())
    a = f.channel("src->out", 1, intermediate=False)
    f.add(Source(f.env, "src", f.timing("source"), 1, [1.0, 2.0], [a]))
    f.add(Sink(f.env, "out", f.timing("sink"), 1, a, expected=3))
    with pytest.raises(DeadlockError, match="sources exhausted: src") as info:
        f.run()
    assert info.value.wait_cycle == [] and info.value.empty == {"src->out": "out"}


def test_max_cycles_stops_a_long_run():
    f, _ = pipeline(spec(ii=4), n=100)
    with pytest.raises(InputError, match="did not finish within 50 cycles"):
        f.run(max_cycles=50)


def test_zero_latency_loop_and_bad_depth_are_refused():
    f = Fabric(spec(latency=0, ch_latency=0))
    a = f.channel("a", 1, intermediate=False)
    b = f.channel("b", 1, intermediate=False)
    with pytest.raises(InputError, match="latency 0 \\+ 0 cycles, expected >= 1"):
        f.add(Map(f.env, "m", f.timing("map"), 1, abs, [a], [b]))
    with pytest.raises(InputError, match="depth 0 must be at least 1"):
        f.channel("c", 1, depth=0)


def test_unknown_unit_kind_lists_known_kinds():
    with pytest.raises(InputError, match="no unit of kind 'exp', expected one of: map, reduce"):
        Fabric(spec()).timing("exp")


def test_unit_count_limit():
    s = spec()
    s = FabricSpec(s.clock_hz, {"map": FabricUnit("map", "map", count=1)}, s.channel)
    f = Fabric(s)
    chans = [f.channel(n, 1) for n in "abcd"]
    f.add(Map(f.env, "m1", f.timing("map"), 1, abs, [chans[0]], [chans[1]]))
    with pytest.raises(ScheduleError, match="needs 2 units of kind 'map', the fabric has 1"):
        f.add(Map(f.env, "m2", f.timing("map"), 1, abs, [chans[2]], [chans[3]]))


def test_auto_depth_covers_round_trip_explicit_depth_does_not():
    s = spec(latency=5, depth=2)
    f, _ = pipeline(s, n=50)
    run = f.run()
    # auto-sized: map->out gets 5 + 1 + 1 entries, so the map is never throttled
    assert run.channels["map->out"]["depth_entries"] == 7
    assert run.cycles == 49 + 2 + 5 + 1
    f, _ = pipeline(s, n=50, depth=2)
    slow = f.run()
    # explicit depth 2 with a 6-cycle round trip: 2 tokens per 6 cycles
    assert slow.cycles > 2.5 * run.cycles


@pytest.mark.parametrize("build", [lambda: pipeline(spec(ii=3, latency=4), n=30, depth=2)[0],
                                   lambda: join_graph(direct_depth=5)[0]])
def test_local_clock_mode_matches_global_clock_mode(build):
    local, clocked = build().run(mode="local"), build().run(mode="clocked")
    assert local.cycles == clocked.cycles
    assert local.channels == clocked.channels            # peaks and traffic, FIFO by FIFO
    np.testing.assert_array_equal(np.stack(local.outputs["out"]),
                                  np.stack(clocked.outputs["out"]))
    assert local.events < clocked.events


def test_deadlock_is_found_in_both_modes():
    for mode in ("local", "clocked"):
        f, _ = join_graph(direct_depth=2)
        with pytest.raises(DeadlockError) as info:
            f.run(mode=mode)
        assert info.value.blocking_channels == ["src->join"]
