"""Load an architecture YAML into a validated :class:`archsim.arch.spec.ArchSpec`.

Steps (:mod:`archsim.configfile`, shared by every archsim YAML loader): read the file (its
sha256 identifies it in results) -> compose the YAML node tree with the *safe* loader (each
field's line; duplicated keys, which PyYAML silently overwrites) -> validate with the pydantic
schema (all errors at once) -> cross-checks the schema cannot express -> build the frozen spec.
Any problem raises :class:`ArchConfigError` whose lines read ``file:line: field: value: what is
allowed``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from archsim import resources
from archsim.arch.coverage import EFFICIENTVIT_KINDS, missing_kinds
from archsim.arch.dataflow import DEFAULT as DEFAULT_DATAFLOW
from archsim.arch.dataflow import PRESETS, Dataflow, Unrolling, WeightLoad
from archsim.arch.dram import BankedDramConfig
from archsim.arch.dram_presets import PRESETS as DRAM_PRESETS
from archsim.arch.errors import ArchConfigError, Problem
from archsim.arch.schema import HOLDABLE, ArchModel, energy_dims
from archsim.arch.spec import (
    ArchParams,
    ArchSpec,
    BufferSpec,
    DramSpec,
    EnergyEntry,
    EngineKind,
    EngineMode,
    EngineSpec,
    InterconnectSpec,
    MappingOverride,
    MappingSpec,
    MemorySpec,
)
from archsim.arch.units import parse_any
from archsim.configfile import Document, did_you_mean, read_document, show, validate_document
from archsim.energy.tables import load_table, sram_entries, table_dims
from archsim.graph.ir import OpKind

DEFAULT_BASELINE_POLICY = "uniform_w8a8"  # [choice] the uniform 8-bit reference policy of a baseline run


def load_arch(path: str | Path, *, search: Sequence[str | os.PathLike] = ()) -> ArchSpec:
    """Parse, validate and build the architecture described by the YAML file at ``path``.

    ``search``: user folders (besides ``ARCHSIM_PATH``) in which a ``baseline:`` given by name is
    looked up (:mod:`archsim.resources`).
    """
    return load_arch_document(
        read_document(path, ArchConfigError, "an architecture YAML file"), search=search
    )


def load_arch_document(doc: Document, *, search: Sequence[str | os.PathLike] = ()) -> ArchSpec:
    """:func:`load_arch` of a document already read (``archsim.overrides`` changes its data first)."""
    model, problems = validate_document(
        doc, ArchModel, ArchConfigError, "top level", {"energy_dims": energy_dims(doc.data)}
    )
    spec = _build(model, doc)
    problems += _cross_checks(model, spec, doc, search)
    if problems:
        raise ArchConfigError(doc.file, problems)
    return spec


def resolve_arch(
    ref: str | os.PathLike, *, base: Path | None = None, search: Sequence[str | os.PathLike] = ()
) -> Path:
    """The architecture YAML a name (``m2vit``) or a path refers to (:func:`archsim.resources.resolve`)."""
    return resources.resolve("arch", ref, base=base, extra=search)


# -- building the spec -------------------------------------------------------------------


def _energy_table(model: ArchModel) -> dict[str, EnergyEntry]:
    """The arch's energy entries: the named table's, its overrides, then the inline ``energy:``."""
    table: dict[str, EnergyEntry] = {}
    if model.energy_table is not None:
        table.update({e.name: e for e in load_table(model.energy_table).entries})
    for key, entries in (("override", model.energy_overrides), ("inline", model.energy)):
        origin = f"override of table {model.energy_table}" if key == "override" else "inline"
        for name, entry in entries.items():
            value, _dim, unit = parse_any(entry.value, ("energy", "energy per byte", "power"))
            table[name] = EnergyEntry(name=name, value=value, unit=unit, source=entry.source, origin=origin)
    return table


def _buffer_energy(name: str, b, table: dict[str, EnergyEntry], energy_table: str | None):
    """(read, write, leakage) of a buffer: the entries it names, else the energy table's SRAM classes (and
    its sram_leakage_per_kib x capacity in KiB); None where neither gives one (the cross-checks say so)."""
    read = table.get(b.read_energy) if b.read_energy else None
    write = table.get(b.write_energy) if b.write_energy else None
    leak = table.get(b.leakage) if b.leakage else None
    if energy_table is not None:
        named = load_table(energy_table)
        if read is None or write is None:
            try:
                sram_read, sram_write = sram_entries(named, name, b.capacity, b.bandwidth)
            except ValueError:
                sram_read = sram_write = None
            read = read or sram_read
            write = write or (sram_read and sram_write)
        if b.leakage is None and "sram_leakage_per_kib" in named.names():
            per_kib = named.entry("sram_leakage_per_kib")
            leak = EnergyEntry(
                name=f"{name}.sram_leakage",
                value=per_kib.value * b.capacity / 1024,
                unit="W",
                source=f"[C] {b.capacity / 1024:g} KiB x sram_leakage_per_kib: {per_kib.source}",
                origin=f"table {energy_table} (sram)",
            )
    return read, write, leak


_MISSING_ENTRY = EnergyEntry("missing", 0.0, "J/B", "missing", origin="missing")
UNIT_LEAKAGE = "mac_unit_leakage"  # the entry engines.<e>.leakage_units multiplies


def _unit_leakage(name: str, units: int | None, table: dict[str, EnergyEntry]) -> EnergyEntry | None:
    """An engine's leakage as ``units`` x the table's mac_unit_leakage (None without units or entry)."""
    per_unit = table.get(UNIT_LEAKAGE)
    if units is None or per_unit is None:
        return None
    return EnergyEntry(
        name=f"{name}.leakage",
        value=units * per_unit.value,
        unit="W",
        source=f"[C] {units} MAC units x {UNIT_LEAKAGE}: {per_unit.source}",
        origin=per_unit.origin,
    )


def _build(model: ArchModel, doc: Document) -> ArchSpec:
    table = _energy_table(model)

    def ref(name: str | None) -> EnergyEntry | None:
        return None if name is None else table[name]

    engines = tuple(
        EngineSpec(
            name=engine_name,
            kind=EngineKind(engine.kind),
            rows=engine.rows,
            pipeline_cycles=engine.pipeline_cycles,
            leakage_power=ref(engine.leakage) or _unit_leakage(engine_name, engine.leakage_units, table),
            register_energy=ref(engine.register_energy),
            modes=tuple(
                EngineMode(
                    name=mode_name,
                    op_kinds=frozenset(OpKind(k) for k in mode.op_kinds),
                    schemes=frozenset(mode.schemes),
                    weight_bits=mode.weight_bits,
                    act_bits=mode.act_bits,
                    lanes=mode.lanes,
                    energy_per_op=table[mode.energy_per_op],
                    energy_by_kind=tuple((k, table[v]) for k, v in sorted(mode.energy_by_kind.items())),
                    dataflow=_dataflow(mode.dataflow),
                )
                for mode_name, mode in engine.modes.items()
            ),
        )
        for engine_name, engine in model.engines.items()
    )
    buffers = []
    for name, b in model.buffers.items():
        read, write, leak = _buffer_energy(name, b, table, model.energy_table)
        buffers.append(
            BufferSpec(
                name=name,
                capacity_bytes=b.capacity,
                bandwidth_bytes_per_cycle=b.bandwidth,
                holds=frozenset(b.holds),
                read_energy=read or _MISSING_ENTRY,
                write_energy=write or _MISSING_ENTRY,
                leakage_power=leak,
            )
        )
    buffers = tuple(buffers)
    dram = _dram(model.dram, table, ref)
    n = model.interconnect
    noc = InterconnectSpec(
        name="noc",
        bandwidth_bytes_per_cycle=n.bandwidth,
        latency_cycles=n.latency,
        energy=table[n.energy],
        topology=n.topology,
        shape=tuple(n.shape),
        energy_per_byte_hop=ref(n.energy_per_byte_hop),
        placement=tuple(sorted(n.placement.items())),
    )
    baseline = None
    if model.baseline is not None:
        baseline = {"arch": model.baseline.arch}
        if model.baseline.policy is not None:
            baseline["policy"] = model.baseline.policy
    return ArchSpec(
        name=model.name,
        clock_hz=model.clock,
        engines=engines,
        buffers=buffers,
        dram=dram,
        interconnect=noc,
        energy_table=tuple(table.values()),
        energy_table_name=model.energy_table or "",
        description=model.description.strip(),
        source_file=doc.file,
        source_sha256=doc.sha256,
        params=ArchParams(model.params.model_dump(exclude_none=True)),
        mapping=MappingSpec(
            model.mapping.split,
            tuple(
                MappingOverride(tuple(o.engines), o.layer, None if o.op_kind is None else OpKind(o.op_kind))
                for o in model.mapping.overrides
            ),
        ),
        memory=MemorySpec(residency=model.memory.residency, fusion=model.memory.fusion),
        static_power=ref(model.static_power),
        baseline=baseline,
    )


DEFAULT_BURST_BYTES = 64  # [C] DDR4 x64 x BL8, the simple model's default burst


def _dram(d, table, ref) -> DramSpec:
    """The DRAM spec: the simple channel, or the banked model with its preset's peak and burst."""
    common = dict(
        name="dram",
        read_energy=table[d.read_energy],
        write_energy=table[d.write_energy],
        background_power=ref(d.background_power),
        act_energy=ref(d.act_energy),
        read_burst_energy=ref(d.read_burst_energy),
        write_burst_energy=ref(d.write_burst_energy),
        refresh_energy=ref(d.refresh_energy),
    )
    if d.model == "banked" and d.preset is not None:
        preset = DRAM_PRESETS[d.preset]
        config = BankedDramConfig(preset, d.address_map, d.scheduler, d.queue_depth, d.refresh)
        return DramSpec(
            peak_bandwidth_bytes_per_s=float(preset.peak_bandwidth_bytes_per_s),
            latency_s=0.0,
            burst_bytes=preset.organization.burst_bytes,
            model="banked",
            banked=config,
            **common,
        )
    return DramSpec(
        peak_bandwidth_bytes_per_s=d.peak_bandwidth or 0.0,
        latency_s=d.latency or 0.0,
        burst_bytes=d.burst or DEFAULT_BURST_BYTES,
        **common,
    )


def _dram_problems(model: ArchModel, spec: ArchSpec, doc: Document) -> list[Problem]:
    d, problems = model.dram, []

    def add(field: str, message: str) -> None:
        problems.append(
            Problem(doc.line_of(("dram", field)) or doc.line_of(("dram",)), f"dram.{field}", message)
        )

    if d.model == "simple":
        for field in ("peak_bandwidth", "latency"):
            if getattr(d, field) is None:
                what = type(d).model_fields[field].description.removeprefix("simple: ").split(";")[0]
                add(field, f"missing required field ({what}; model: banked takes it from its preset)")
        for field in ("preset", "address_map"):
            if getattr(d, field) is not None:
                add(field, "only with model: banked")
        return problems
    if d.preset is None:
        add("preset", f"required with model: banked; allowed: {', '.join(DRAM_PRESETS)}")
        return problems
    peak = float(DRAM_PRESETS[d.preset].peak_bandwidth_bytes_per_s)
    if d.peak_bandwidth is not None and abs(d.peak_bandwidth - peak) > 1e-9 * peak:
        add("peak_bandwidth", f"{d.peak_bandwidth:g} B/s differs from the preset's {peak:g} B/s; omit it")
    burst = DRAM_PRESETS[d.preset].organization.burst_bytes
    if d.burst is not None and d.burst != burst:
        add("burst", f"{d.burst} B differs from the preset's {burst} B; omit it")
    for field, message in spec.dram.banked.problems():
        add(field, message)
    return problems


def _noc_problems(spec: ArchSpec, doc: Document) -> list[Problem]:
    """A non-bus interconnect places dram and every buffer, names only real nodes, and can be built."""
    noc = spec.interconnect
    if noc.topology == "bus" and not noc.placement:
        return []
    where = ("interconnect",)
    placed = {name for name, _ in noc.placement}
    known = ["dram"] + [b.name for b in spec.buffers] + [e.name for e in spec.engines]
    problems = [
        Problem(
            doc.line_of(where + ("placement",)) or doc.line_of(where),
            f"interconnect.placement.{name}",
            f"not a node; {did_you_mean(name, known)}nodes: {', '.join(known)}",
        )
        for name in sorted(placed - set(known))
    ]
    missing = [n for n in ["dram"] + [b.name for b in spec.buffers] if n not in placed]
    if missing and noc.topology != "bus":
        problems.append(
            Problem(
                doc.line_of(where),
                "interconnect.placement",
                f"place {', '.join(missing)} (dram and every buffer are endpoints of the DMA)",
            )
        )
    if not problems:
        for field_, message in noc.config().problems():
            problems.append(Problem(doc.line_of(where), f"interconnect.{field_}", message))
    return problems


def _dataflow(model) -> Dataflow:
    """The mode's dataflow: its preset with the declared changes (archsim.arch.dataflow)."""
    if model is None:
        return DEFAULT_DATAFLOW
    base = PRESETS[model.preset]
    changes = {}
    for family in ("conv", "depthwise", "linear", "matmul"):
        u = getattr(model, family)
        if u is not None:
            changes[family] = Unrolling(tuple(u.rows), tuple(u.lanes), tuple(u.stream))
    for key in ("fill", "fill_cycles"):
        if getattr(model, key) is not None:
            changes[key] = getattr(model, key)
    if model.weight_load is not None:
        changes["weight_load"] = WeightLoad(model.weight_load.cycles, model.weight_load.prefetch)
    if changes:
        changes["name"] = f"{base.name}+" + "+".join(sorted(changes))
    return replace(base, **changes)


def _mapping_problems(model: ArchModel, doc: Document) -> list[Problem]:
    problems = []
    engines = list(model.engines)
    for i, o in enumerate(model.mapping.overrides):
        where = ("mapping", "overrides", i)
        if (o.layer is None) == (o.op_kind is None):
            problems.append(
                Problem(
                    doc.line_of(where),
                    f"mapping.overrides.{i}",
                    "give exactly one of layer (a name or glob) and op_kind",
                )
            )
        for name in o.engines:
            if name not in engines:
                problems.append(
                    Problem(
                        doc.line_of(where + ("engines",)),
                        f"mapping.overrides.{i}.engines",
                        f"{name}: no such engine; {did_you_mean(name, engines)}engines: {', '.join(engines)}",
                    )
                )
    return problems


def _energy_problems(model: ArchModel, spec: ArchSpec, doc: Document) -> list[Problem]:
    """An energy table is given (inline or named); overrides replace entries of the named table (same
    dimension); inline entries do not shadow it; every buffer has read and write energy."""
    problems: list[Problem] = []
    named = table_dims(model.energy_table) if model.energy_table else {}
    if model.energy_table is None and not model.energy:
        problems.append(
            Problem(
                doc.line_of(("energy",)),
                "energy",
                "give an energy table: energy_table: <name> (a bundled table) or "
                "energy: {name: {value, source}}",
            )
        )
    if model.energy_table is None and model.energy_overrides:
        problems.append(
            Problem(doc.line_of(("energy_overrides",)), "energy_overrides", "only with energy_table: <name>")
        )
    for name, entry in model.energy_overrides.items():
        where = ("energy_overrides", name)
        if model.energy_table is not None and name not in named:
            problems.append(
                Problem(
                    doc.line_of(where),
                    f"energy_overrides.{name}",
                    f"not an entry of energy table {model.energy_table}; {did_you_mean(name, named)}"
                    "to add an entry, put it under energy:",
                )
            )
        elif name in named:
            dim = parse_any(entry.value, ("energy", "energy per byte", "power"))[1]
            if dim != named[name]:
                problems.append(
                    Problem(
                        doc.line_of(where + ("value",)),
                        f"energy_overrides.{name}.value",
                        f"is {dim}, but the table's {name} is {named[name]}",
                        show(entry.value),
                    )
                )
    for name in model.energy:
        if name in named:
            problems.append(
                Problem(
                    doc.line_of(("energy", name)),
                    f"energy.{name}",
                    f"already an entry of energy table {model.energy_table}; to replace it, put it under "
                    "energy_overrides:",
                )
            )
    for name, engine in model.engines.items():
        where = ("engines", name, "leakage_units")
        if engine.leakage_units is not None and engine.leakage is not None:
            problems.append(
                Problem(doc.line_of(where), f"engines.{name}.leakage_units", "give leakage or leakage_units")
            )
        elif engine.leakage_units is not None and UNIT_LEAKAGE not in table_dims(model.energy_table or "") | {
            k: None for k in model.energy
        }:
            problems.append(
                Problem(
                    doc.line_of(where),
                    f"engines.{name}.leakage_units",
                    f"needs a {UNIT_LEAKAGE} entry (energy_table: asic28 has one, or add it under energy:)",
                )
            )
    for b in spec.buffers:
        for field_, entry in (("read_energy", b.read_energy), ("write_energy", b.write_energy)):
            if entry is _MISSING_ENTRY:
                why = "no energy_table gives SRAM classes"
                if model.energy_table is not None:
                    try:
                        sram_entries(load_table(model.energy_table), b.name, b.capacity_bytes, 1)
                    except ValueError as err:
                        why = str(err)
                problems.append(
                    Problem(
                        doc.line_of(("buffers", b.name)),
                        f"buffers.{b.name}.{field_}",
                        f"missing ({why}); name an energy entry in J/B",
                    )
                )
    return problems


def _cross_checks(
    model: ArchModel, spec: ArchSpec, doc: Document, search: Sequence[str | os.PathLike]
) -> list[Problem]:
    problems = _mapping_problems(model, doc) + _dram_problems(model, spec, doc) + _noc_problems(spec, doc)
    problems += _energy_problems(model, spec, doc)
    for engine_name, engine in model.engines.items():
        for mode_name, _mode in engine.modes.items():
            dataflow = spec.engine(engine_name).mode(mode_name).dataflow
            where = ("engines", engine_name, "modes", mode_name, "dataflow")
            for field, problem in dataflow.check():
                problems.append(Problem(doc.line_of(where), ".".join(map(str, where + (field,))), problem))
    for what in HOLDABLE:
        holders = [b.name for b in spec.buffers if what in b.holds]
        if len(holders) != 1:
            found = ", ".join(holders) if holders else "none"
            problems.append(
                Problem(
                    doc.line_of(("buffers",)),
                    "buffers",
                    f"exactly one buffer must hold {what} (holds: [{what}]); found: {found}",
                )
            )
    missing = missing_kinds(spec, EFFICIENTVIT_KINDS)
    if missing:
        names = ", ".join(k.value for k in missing)
        problems.append(
            Problem(
                doc.line_of(("engines",)),
                "engines",
                f"no engine mode lists op kind(s) {names}, which EfficientViT graphs contain; "
                f"add each to some mode's op_kinds (op kinds: {', '.join(k.value for k in OpKind)})",
            )
        )
    if model.baseline is not None:
        base = doc.path.parent
        for key, kind, ref in (
            ("arch", "arch", model.baseline.arch),
            ("policy", "policy", model.baseline.policy or DEFAULT_BASELINE_POLICY),
        ):
            try:
                resources.resolve(kind, ref, base=base, extra=search)
            except resources.ResourceError as err:
                reason = err.reason
                if resources.looks_like_path(ref):
                    reason += "; allowed: a name (`archsim list`) or a path relative to this file"
                problems.append(Problem(doc.line_of(("baseline", key)), f"baseline.{key}", reason, show(ref)))
    return problems
