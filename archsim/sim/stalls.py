"""Why engines wait: stall time by cause, per engine and per layer, from the tiles' timestamps (pure).

Every tile records when it passed each step of its way (:class:`TileTimes`, integer ps): the loader turned to
it (``begin``: the layer's start, or the previous tile loaded, since one loader serves a layer's tiles in
order), the producer rows it reads were ready (``producer``; fused layers only, else ``begin``), its slot,
weight and staging bytes were held (``space``), its DRAM reads ended at the controller (``dram``), its data
were in the buffer (``loaded``, after the interconnect), and, per stream, when the engine was granted, when
the closed-form compute ended and when the engine was released (the buffer port may hold it longer).

A layer's *loader chain* covers [start, loaded of its last tile) without gaps; each stretch has one cause:

    [begin, producer)   fused_producer    the rows it reads were still being produced
    [producer, space)   buffer_space      no tile slot (double buffering), weight or staging bytes free
    [space, dram)       data              the DRAM (its queue, banks, refresh, bandwidth)
    [dram, loaded)      interconnect      the link or route behind the DRAM
    before start        dependency        a producer layer had not finished
    after loaded        engine            the engine served other work

**Engine view.** An engine's time is its held intervals (busy: [grant, compute end); ``buffer_port``: [compute
end, release)) and the gaps between them. A gap before a tile is attributed by that tile's loader chain
clipped to the gap; the time after the engine's last tile is ``idle`` (no work left), as is all the time of
an engine that runs nothing. So busy + the stalls of every cause = the run's latency, exactly (an invariant
checked).

**Layer view.** Over a layer's own span, each of its streams is busy, or waits by the same chain (here
``engine`` is real: another layer held the engine), and after its last tile waits for the other stream of a
split layer (``engine``) and then for the write-backs (``data``); the busiest stream's split is reported.

**Bound.** Stalls say what an engine waited for, not what limited the layer: while a port-bound tile holds
the engine, the DMA keeps loading, so a DRAM-bound layer can show more port than data stall. A layer's
*bound* is therefore the resource it kept busiest (:func:`bound`): the largest of its demands on compute (its
busiest stream's closed-form time), DRAM (bytes moved / peak bandwidth), interconnect (bytes / link bandwidth)
and buffer (its busiest engine port's bytes / port width); ties go in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CAUSES = (
    "dependency",
    "fused_producer",
    "buffer_space",
    "buffer_port",
    "data",
    "interconnect",
    "engine",
    "idle",
)
BOUNDS = ("compute", "dram", "interconnect", "buffer")


@dataclass
class TileTimes:
    begin: int
    producer: int
    space: int
    dram: int
    loaded: int
    grant: list[int | None] = field(default_factory=list)  # per stream (None: no work on that stream)
    compute_end: list[int | None] = field(default_factory=list)
    release: list[int | None] = field(default_factory=list)


@dataclass
class LayerTimes:
    start: int
    end: int
    engines: tuple[str, ...]  # per stream
    tiles: list[TileTimes]


def _chain(layer: LayerTimes, t: int, a: int, b: int, out: dict[str, int]) -> None:
    """Add to ``out`` the causes over [a, b) of the wait for tile ``t`` of ``layer`` (its loader chain)."""

    def add(cause: str, lo: int, hi: int) -> None:
        lo, hi = max(lo, a), min(hi, b)
        if hi > lo:
            out[cause] = out.get(cause, 0) + hi - lo

    add("dependency", a, layer.start)
    for i in range(t + 1):
        x = layer.tiles[i]
        if x.loaded <= a:
            continue
        if x.begin >= b:
            break
        add("fused_producer", x.begin, x.producer)
        add("buffer_space", x.producer, x.space)
        add("data", x.space, x.dram)
        add("interconnect", x.dram, x.loaded)
    add("engine", layer.tiles[t].loaded, b)


def engine_stalls(layers: dict[str, LayerTimes], latency_ps: int, engines: list[str]) -> dict[str, dict]:
    """Engine -> {"busy": ps, cause: ps for every cause in CAUSES}; each engine's values sum to
    ``latency_ps``."""
    held: dict[str, list] = {e: [] for e in engines}
    for name, layer in layers.items():
        for t, x in enumerate(layer.tiles):
            for s, engine in enumerate(layer.engines):
                if x.grant[s] is not None:
                    held[engine].append((x.grant[s], x.compute_end[s], x.release[s], name, t))
    out = {}
    for engine in engines:
        totals = {"busy": 0, **{c: 0 for c in CAUSES}}
        cursor = 0
        for grant, compute_end, release, name, t in sorted(held[engine]):
            if grant > cursor:
                _chain(layers[name], t, cursor, grant, totals)
            totals["busy"] += compute_end - grant
            totals["buffer_port"] += release - compute_end
            cursor = max(cursor, release)
        totals["idle"] += max(0, latency_ps - cursor)
        out[engine] = totals
    return out


def layer_stalls(layer: LayerTimes) -> dict[str, int]:
    """{"busy": ps, cause: ps} of the layer's busiest stream over the layer's span (zeros left out)."""
    per_stream = []
    lasts = [
        max((x.release[s] for x in layer.tiles if x.release[s] is not None), default=layer.start)
        for s in range(len(layer.engines))
    ]
    for s in range(len(layer.engines)):
        totals = {"busy": 0}
        cursor = layer.start
        for t, x in enumerate(layer.tiles):
            if x.grant[s] is None:
                continue
            if x.grant[s] > cursor:
                _chain(layer, t, cursor, x.grant[s], totals)
            totals["busy"] += x.compute_end[s] - x.grant[s]
            totals["buffer_port"] = totals.get("buffer_port", 0) + x.release[s] - x.compute_end[s]
            cursor = x.release[s]
        partner = max(lasts)
        if partner > cursor:
            totals["engine"] = totals.get("engine", 0) + partner - cursor
            cursor = partner
        if layer.end > cursor:
            totals["data"] = totals.get("data", 0) + layer.end - cursor
        per_stream.append(totals)
    if not per_stream:
        return {}
    worst = max(per_stream, key=lambda d: d["busy"])
    return {k: v for k, v in worst.items() if v}


def bound(demands: dict[str, float]) -> str:
    """The resource with the largest demand (s, or any one unit) of ``demands`` over BOUNDS; ties in order."""
    return max(BOUNDS, key=lambda b: (demands.get(b, 0), -BOUNDS.index(b)))
