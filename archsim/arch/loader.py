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
from pathlib import Path

from archsim import resources
from archsim.arch.coverage import EFFICIENTVIT_KINDS, missing_kinds
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
)
from archsim.arch.units import parse_any
from archsim.configfile import Document, read_document, show, validate_document
from archsim.graph.ir import OpKind

DEFAULT_BASELINE_POLICY = "uniform_w8a8"  # [choice] the uniform 8-bit reference policy of a baseline run


def load_arch(path: str | Path, *, search: Sequence[str | os.PathLike] = ()) -> ArchSpec:
    """Parse, validate and build the architecture described by the YAML file at ``path``.

    ``search``: user folders (besides ``ARCHSIM_PATH``) in which a ``baseline:`` given by name is
    looked up (:mod:`archsim.resources`).
    """
    return load_arch_document(read_document(path, ArchConfigError, "an architecture YAML file"), search=search)


def load_arch_document(doc: Document, *, search: Sequence[str | os.PathLike] = ()) -> ArchSpec:
    """:func:`load_arch` of a document already read (``archsim.overrides`` changes its data first)."""
    model, problems = validate_document(doc, ArchModel, ArchConfigError, "top level",
                                        {"energy_dims": energy_dims(doc.data)})
    spec = _build(model, doc)
    problems += _cross_checks(model, spec, doc, search)
    if problems:
        raise ArchConfigError(doc.file, problems)
    return spec


def resolve_arch(ref: str | os.PathLike, *, base: Path | None = None,
                 search: Sequence[str | os.PathLike] = ()) -> Path:
    """The architecture YAML a name (``m2vit``) or a path refers to (:func:`archsim.resources.resolve`)."""
    return resources.resolve("arch", ref, base=base, extra=search)


# -- building the spec -------------------------------------------------------------------


def _build(model: ArchModel, doc: Document) -> ArchSpec:
    table: dict[str, EnergyEntry] = {}
    for name, entry in model.energy.items():
        value, _dim, unit = parse_any(entry.value, ("energy", "energy per byte", "power"))
        table[name] = EnergyEntry(name=name, value=value, unit=unit, source=entry.source)

    def ref(name: str | None) -> EnergyEntry | None:
        return None if name is None else table[name]

    engines = tuple(
        EngineSpec(
            name=engine_name,
            kind=EngineKind(engine.kind),
            rows=engine.rows,
            pipeline_cycles=engine.pipeline_cycles,
            leakage_power=ref(engine.leakage),
            modes=tuple(
                EngineMode(
                    name=mode_name,
                    op_kinds=frozenset(OpKind(k) for k in mode.op_kinds),
                    schemes=frozenset(mode.schemes),
                    weight_bits=mode.weight_bits,
                    act_bits=mode.act_bits,
                    lanes=mode.lanes,
                    energy_per_op=table[mode.energy_per_op],
                )
                for mode_name, mode in engine.modes.items()
            ),
        )
        for engine_name, engine in model.engines.items()
    )
    buffers = tuple(
        BufferSpec(
            name=name,
            capacity_bytes=b.capacity,
            bandwidth_bytes_per_cycle=b.bandwidth,
            holds=frozenset(b.holds),
            read_energy=table[b.read_energy],
            write_energy=table[b.write_energy],
            leakage_power=ref(b.leakage),
        )
        for name, b in model.buffers.items()
    )
    d = model.dram
    dram = DramSpec(
        name="dram",
        peak_bandwidth_bytes_per_s=d.peak_bandwidth,
        latency_s=d.latency,
        read_energy=table[d.read_energy],
        write_energy=table[d.write_energy],
        background_power=ref(d.background_power),
        burst_bytes=d.burst,
    )
    n = model.interconnect
    noc = InterconnectSpec(name="noc", bandwidth_bytes_per_cycle=n.bandwidth, latency_cycles=n.latency,
                           energy=table[n.energy])
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
        description=model.description.strip(),
        source_file=doc.file,
        source_sha256=doc.sha256,
        params=ArchParams(model.params.model_dump(exclude_none=True)),
        static_power=ref(model.static_power),
        baseline=baseline,
    )


def _cross_checks(model: ArchModel, spec: ArchSpec, doc: Document,
                  search: Sequence[str | os.PathLike]) -> list[Problem]:
    problems = []
    for what in HOLDABLE:
        holders = [b.name for b in spec.buffers if what in b.holds]
        if len(holders) != 1:
            found = ", ".join(holders) if holders else "none"
            problems.append(Problem(doc.line_of(("buffers",)), "buffers",
                                    f"exactly one buffer must hold {what} (holds: [{what}]); found: {found}"))
    missing = missing_kinds(spec, EFFICIENTVIT_KINDS)
    if missing:
        names = ", ".join(k.value for k in missing)
        problems.append(Problem(
            doc.line_of(("engines",)), "engines",
            f"no engine mode lists op kind(s) {names}, which EfficientViT graphs contain; add each to some "
            f"mode's op_kinds (op kinds: {', '.join(k.value for k in OpKind)})",
        ))
    if model.baseline is not None:
        base = doc.path.parent
        for key, kind, ref in (("arch", "arch", model.baseline.arch),
                               ("policy", "policy", model.baseline.policy or DEFAULT_BASELINE_POLICY)):
            try:
                resources.resolve(kind, ref, base=base, extra=search)
            except resources.ResourceError as err:
                reason = err.reason
                if resources.looks_like_path(ref):
                    reason += "; allowed: a name (`archsim list`) or a path relative to this file"
                problems.append(Problem(doc.line_of(("baseline", key)), f"baseline.{key}", reason, show(ref)))
    return problems
