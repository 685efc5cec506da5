"""The result's ``energy`` block: the counted events and every total the result reports, each a sum over them.

Totals (J): ``total_j`` (= ``SimResult.energy_j``), ``per_inference_j`` (total / batch), ``per_mac_j``
(total / MACs of the MAC-family layers), ``edp_js`` (total x latency, J*s); ``by_component_j``,
``by_engine_j`` (events an engine caused: its ops, registers, its port accesses and its leakage),
``by_layer_j`` (``(run)`` holds static power and the banked DRAM's commands), ``by_op_kind_j`` and
``by_event_kind_j``; ``coefficients``: every entry an event used, with value, unit and source; ``events``:
the list itself ({layer, op_kind, component, engine, kind, count, count_unit, coefficient,
joules_per_event, joules}).
"""

from __future__ import annotations

from archsim.energy import accounting


def energy_block(
    events: list, spec, graph, layer_results, energy_j: float, latency_s: float, not_modelled
) -> dict:
    macs = sum(lr.macs for lr in layer_results)
    batch = int(graph.graph.get("batch", 1) or 1)
    prov = accounting.provenance(spec)
    used = sorted({e.coefficient for e in events})
    return {
        "total_j": energy_j,
        "per_inference_j": energy_j / batch,
        "per_mac_j": energy_j / macs if macs else None,
        "edp_js": energy_j * latency_s,
        "by_component_j": accounting.group(events, lambda e: e.component),
        "by_engine_j": accounting.group((e for e in events if e.engine), lambda e: e.engine),
        "by_layer_j": accounting.group(events, lambda e: e.layer),
        "by_op_kind_j": accounting.group(events, lambda e: e.op_kind or accounting.RUN),
        "by_event_kind_j": accounting.group(events, lambda e: e.kind.split(":")[0]),
        "coefficients": {name: prov[name] for name in used if name in prov},
        "table": spec.energy_table_name or "inline",
        "not_modelled": list(not_modelled),
        "units": {
            "total_j": "J",
            "per_inference_j": "J per inference",
            "per_mac_j": "J per MAC",
            "edp_js": "J*s",
            "by_*_j": "J",
            "events.count": "events.count_unit",
            "events.joules_per_event": "J",
            "events.joules": "J",
        },
        "events": [e.to_dict() for e in events],
    }


def shares(block: dict) -> dict[str, float]:
    """Compute (ops + epilogue + registers), on-chip (buffer accesses), off-chip (DRAM + interconnect) and
    static energy, J: the printed summary's breakdown line."""
    out = {"compute": 0.0, "on_chip": 0.0, "off_chip": 0.0, "static": 0.0}
    buffers = set()
    for e in block["events"]:
        if e["component"] == accounting.STATIC_KEY:
            out["static"] += e["joules"]
        elif e["component"] in (accounting.DRAM_KEY, accounting.NOC_KEY):
            out["off_chip"] += e["joules"]
        elif e["count_unit"] == "accesses":
            out["on_chip"] += e["joules"]
            buffers.add(e["component"])
        else:
            out["compute"] += e["joules"]
    return out
