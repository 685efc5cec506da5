"""Human-readable summary of a simulation result (what `archsim run` prints)."""

from __future__ import annotations

from archsim.report.result import SimResult


def format_si(value: float, unit: str) -> str:
    """Format with an engineering prefix: 3.2e-3 J -> '3.200 mJ'."""
    if value == 0:
        return f"0 {unit}"
    prefixes = [
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1, ""),
        (1e-3, "m"),
        (1e-6, "u"),
        (1e-9, "n"),
        (1e-12, "p"),
    ]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3f} {prefix}{unit}"
    return f"{value / 1e-15:.3f} f{unit}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


DIGEST_CHARS = 12  # [choice] sha256 prefix shown in the terminal summary (the JSON has all 64)


def _digest(sha256: str | None) -> str:
    return f"(sha256 {sha256[:DIGEST_CHARS]}) " if sha256 else ""


def _values_line(result: SimResult) -> str:
    f = result.functional or {}
    if not f.get("computed"):
        return f"values    not computed: {f.get('reason', 'values off')}"
    outs = ", ".join(
        f"{name} ({len(o['values']):,} {o['kind']}, sha256 {f['layers_sha256'][name][:12]})"
        for name, o in f["outputs"].items()
    )
    return f"values    computed tile by tile on the simulated engines ({f['macs']:,} MACs); output {outs}"


def _per_mac(result: SimResult) -> str:
    per_mac = (result.energy or {}).get("per_mac_j")
    return f" ({format_si(per_mac, 'J')}/MAC)" if per_mac else ""


def _energy_lines(result: SimResult) -> list[str]:
    """The breakdown line (compute, on-chip buffers, DRAM + interconnect, static) and the bounds line."""
    from archsim.energy.report import shares

    out = []
    if result.energy and result.energy.get("events"):
        parts = shares(result.energy)
        total = result.energy_j or 1.0
        out.append(
            "          "
            + ", ".join(f"{k.replace('_', '-')} {100 * v / total:.1f} %" for k, v in parts.items())
        )
    if result.bounds:
        lat, en = result.bounds["latency_s"]["value"], result.bounds["energy_j"]["value"]
        out.append(
            f"bounds    latency >= {format_si(lat, 's')} ({result.latency_s / lat:.2f}x), "
            f"energy >= {format_si(en, 'J')} ({result.energy_j / en:.2f}x)"
            if lat and en
            else f"bounds    latency >= {format_si(lat, 's')}, energy >= {format_si(en, 'J')}"
        )
    return out


def summarize(result: SimResult, top_layers: int = 8) -> str:
    wl = result.workload
    lines = [
        f"workload  {wl.get('name', wl.get('model', '?'))}  model={wl.get('model', '?')} "
        f"res={wl.get('resolution', '?')} batch={wl.get('batch', '?')} policy={wl.get('policy', '?')}",
        f"arch      {result.arch.get('name', '?')}  {_digest(result.arch.get('sha256'))}"
        f"clock={format_si(result.clock_hz, 'Hz')}",
        "",
        f"latency   {result.latency_cycles:,} cycles = {format_si(result.latency_s, 's')}",
        f"energy    {format_si(result.energy_j, 'J')}{_per_mac(result)}",
        *_energy_lines(result),
        f"EDP       {result.edp_js:.4e} J*s",
        f"events    {result.events:,} simulation events",
        "",
        "energy breakdown",
    ]
    total = result.energy_j or 1.0
    rows = [
        [name, format_si(e, "J"), f"{100 * e / total:5.1f} %"]
        for name, e in sorted(result.energy_breakdown_j.items(), key=lambda kv: -kv[1])
    ]
    lines.append(_table(["component", "energy", "share"], rows))
    lines += ["", "engines"]
    rows = [
        [
            e.name,
            f"{e.busy_cycles:,}",
            f"{100 * e.utilization:5.1f} %",
            f"{e.macs:,}",
            f"{e.achieved_ops_per_cycle:,.1f} / {e.peak_ops_per_cycle:,}",
        ]
        for e in result.engines.values()
    ]
    lines.append(
        _table(
            ["engine", "busy cycles", "utilization", "ops", "ops/cycle while busy / fastest-mode peak"], rows
        )
    )
    stalled = [e for e in result.engines.values() if e.stall_s]
    if stalled:
        causes = [c for c in stalled[0].stall_s if any(e.stall_s.get(c) for e in stalled)]
        lines += ["", 'engine time by cause (busy + stalls = latency; docs/modelling.md "Stalls")']
        rows = [
            [e.name, format_si(e.busy_cycles / result.clock_hz, "s")]
            + [format_si(e.stall_s.get(c, 0.0), "s") for c in causes]
            for e in stalled
        ]
        lines.append(_table(["engine", "busy", *causes], rows))
        bounds: dict[str, int] = {}
        for layer in result.layers:
            if layer.bound:
                bounds[layer.bound] = bounds.get(layer.bound, 0) + 1
        spilled = sum(1 for layer in result.layers if layer.output == "dram")
        lines.append(
            "layers bound by "
            + ", ".join(f"{b} {n}" for b, n in sorted(bounds.items(), key=lambda kv: -kv[1]))
            + f"; outputs to DRAM {spilled} of {len(result.layers)}"
        )
        pairs = [  # one line per pair: its producer's
            layer
            for layer in result.layers
            if layer.fusion.startswith(("fused into", "unfused with"))
            and " its producer " not in layer.fusion
        ]
        if pairs:
            fused = sum(1 for layer in pairs if layer.fusion.startswith("fused into"))
            lines.append(
                f"DW->PW fusion: {fused} of {len(pairs)} eligible pairs fused (layers[].fusion says why)"
            )
    lines += ["", f"top {top_layers} layers by time"]
    ranked = sorted(result.layers, key=lambda layer: (-(layer.end_cycle - layer.start_cycle), layer.name))
    rows = [
        [
            layer.name,
            layer.kind,
            "+".join(layer.engines),
            f"{layer.end_cycle - layer.start_cycle:,}",
            f"{layer.macs:,}",
            format_si(layer.energy_j, "J"),
            layer.bound,
            layer.output,
        ]
        for layer in ranked[:top_layers]
    ]
    lines.append(_table(["layer", "kind", "engines", "cycles", "MACs", "energy", "bound", "output"], rows))
    lines += ["", _values_line(result)]
    if "functional" in result.checks and result.checks["functional"].get("layers"):
        from archsim.functional.compare import format_check

        lines.append(format_check(result.checks["functional"]))
    failed = [name for name, c in result.checks.items() if isinstance(c, dict) and not c.get("held", True)]
    lines += [
        "",
        f"checks    {len(result.checks) - len(failed)}/{len(result.checks)} held"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""),
    ]
    return "\n".join(lines)


def compare(main: SimResult, base: SimResult) -> dict:
    """Ratios of ``main`` over ``base`` (values below 1 mean main is better)."""

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    return {
        "latency_ratio": ratio(main.latency_s, base.latency_s),
        "energy_ratio": ratio(main.energy_j, base.energy_j),
        "edp_ratio": ratio(main.edp_js, base.edp_js),
        "edp_saving": None if not base.edp_js else 1 - main.edp_js / base.edp_js,
        "main": {"arch": main.arch.get("name"), "policy": main.workload.get("policy")},
        "baseline": {"arch": base.arch.get("name"), "policy": base.workload.get("policy")},
    }


def summarize_comparison(cmp: dict) -> str:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f} %"

    def times(x):
        return "n/a" if x is None else f"{x:.3f}x"

    return "\n".join(
        [
            f"comparison: {cmp['main']['arch']} ({cmp['main']['policy']}) vs "
            f"{cmp['baseline']['arch']} ({cmp['baseline']['policy']})",
            f"  latency ratio {times(cmp['latency_ratio'])}   energy ratio {times(cmp['energy_ratio'])}   "
            f"EDP ratio {times(cmp['edp_ratio'])}   EDP saving {pct(cmp['edp_saving'])}",
        ]
    )
