"""load_arch: the shipped configs give sane specs; every bad input gives a file:line error."""

import re
from pathlib import Path

import pytest
import yaml

from archsim.arch.errors import ArchConfigError
from archsim.arch.loader import load_arch
from archsim.arch.spec import ArchParams
from archsim.configfile import show
from archsim.graph.ir import OpKind, Scheme

CONFIGS = Path(__file__).resolve().parents[2] / "arch_configs"
M2VIT = CONFIGS / "m2vit.yaml"
BASELINE = CONFIGS / "uniform_int8.yaml"
ALL_CONFIGS = sorted(CONFIGS.glob("*.yaml"))


# -- the shipped configs ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_with_provenance(path):
    spec = load_arch(path)
    assert spec.source_file == str(path)
    assert spec.energy_table, "energy table is empty"
    for entry in spec.energy_table:
        assert re.match(r"(\[(S|C|I)(/(S|C|I))*\]|assumed)", entry.source), entry
        # zero only as an explicit assumption (peer32_ws: the peer tools charge no interconnect energy)
        assert entry.value > 0 or (entry.value == 0 and entry.source.startswith("assumed:")), entry
    assert spec.buffer_for("weights").name != spec.buffer_for("activations").name


def test_m2vit_spec_numbers():
    spec = load_arch(M2VIT)
    mpma, sat, vector = spec.engine("mpma"), spec.engine("sat"), spec.engine("vector")
    assert spec.clock_hz == 200e6 and spec.clock_period_ps == 5000
    assert mpma.peak_ops_per_cycle("merged") == 1024
    assert mpma.peak_ops_per_cycle("single") == 2048
    assert mpma.mode("single").weight_bits == 4 and mpma.mode("merged").weight_bits == 8
    assert sat.mode("shift_add").schemes == frozenset({Scheme.APOT})
    assert sat.mode("shift_add").weight_bits == 4  # 4-bit APoT codes (m2q)
    sat_lanes, mpma_lanes = sat.peak_ops_per_cycle("shift_add"), mpma.peak_ops_per_cycle("merged")
    assert sat_lanes == 64 * 64
    # sized so the SAT's share of pointwise work finishes with the MPMA's at an APoT share of 0.8:
    # p / sat_lanes == (1 - p) / mpma_lanes  <=>  p == sat_lanes / (sat_lanes + mpma_lanes)
    assert sat_lanes / (sat_lanes + mpma_lanes) == pytest.approx(0.8)
    assert vector.peak_ops_per_cycle("simd") == 64
    assert spec.dram.peak_bandwidth_bytes_per_s == pytest.approx(19.2e9)
    assert spec.dram.latency_s == pytest.approx(60e-9)
    assert spec.dram.burst_bytes == 64
    assert spec.buffer_for("weights").capacity_bytes == 256 * 1024
    assert spec.buffer_for("activations").capacity_bytes == 512 * 1024
    assert mpma.mode("merged").energy_per_op.value == pytest.approx(2.5e-12)
    assert spec.dram.read_energy.unit == "pJ/B"
    assert spec.static_power.value == pytest.approx(2.5)
    assert spec.baseline == {"arch": "uniform_int8.yaml", "policy": "uniform_w8a8"}


def _eight_bit_multipliers(spec):
    """8x8-equivalent multipliers: widest 8-bit uniform mode of each MAC array."""
    total = 0
    for e in spec.engines:
        if e.kind.value == "mac_array":
            total += max(e.rows * m.lanes for m in e.modes if m.weight_bits == 8 and m.act_bits == 8)
    return total


@pytest.mark.parametrize(
    "m2vit_name, base_name",
    [("m2vit.yaml", "uniform_int8.yaml"), ("m2vit_asic28.yaml", "uniform_int8_asic28.yaml")],
)
def test_baseline_has_equal_budget_with_sat_lanes_at_their_area_equivalent(m2vit_name, base_name):
    m2vit, base = load_arch(CONFIGS / m2vit_name), load_arch(CONFIGS / base_name)
    sat_lanes = m2vit.engine("sat").peak_ops_per_cycle("shift_add")
    area = m2vit.params["sat_lane_area_in_mult8"]  # [I] estimate, documented in docs/configs.md
    assert 0 < area <= 1
    budget = _eight_bit_multipliers(m2vit) + area * sat_lanes
    assert _eight_bit_multipliers(base) == pytest.approx(budget)
    assert area == 0.5  # the chosen default (gate-count estimate)
    assert _eight_bit_multipliers(base) == budget == 1024 + 0.5 * 4096 == 3072
    assert base.engine("mat").rows == 88
    assert base.engine("rpe").rows * base.engine("rpe").mode("int8").lanes == 16 * 16  # R-PE unchanged
    for e in base.engines:  # uniform 8-bit only
        for m in e.modes:
            assert Scheme.APOT not in m.schemes and m.weight_bits in (0, 8)
    # everything but the engines is the same design
    assert base.buffers == m2vit.buffers and base.dram == m2vit.dram
    assert base.interconnect == m2vit.interconnect and base.clock_hz == m2vit.clock_hz


def test_asic_variants_run_at_500_mhz_if_present():
    for name in ("m2vit_asic28.yaml", "uniform_int8_asic28.yaml"):
        path = CONFIGS / name
        if path.exists():
            spec = load_arch(path)
            assert spec.clock_period_ps == 2000
            assert spec.engines[0].modes[0].energy_per_op.value < 1e-12  # 28 nm: sub-pJ MACs


# -- bad inputs ----------------------------------------------------------------------------

TEXT = M2VIT.read_text()


def line_of(text: str, needle: str, start: str | None = None) -> int:
    """1-based line of the first line containing ``needle`` (after the line containing ``start``)."""
    lines = text.splitlines()
    first = 0 if start is None else next(i for i, line in enumerate(lines) if start in line)
    return next(i for i, line in enumerate(lines) if i >= first and needle in line) + 1


def mutate(old: str, new: str, start: str | None = None, text: str = TEXT) -> str:
    """Replace the first ``old`` (after the line containing ``start``) in the m2vit text."""
    offset = 0 if start is None else text.index(start)
    i = text.index(old, offset)
    return text[:i] + new + text[i + len(old) :]


def load_text(tmp_path, text: str, name: str = "m2vit.yaml"):
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "uniform_int8.yaml").write_text(BASELINE.read_text())  # the baseline it names
    return load_arch(path), path


def error_for(tmp_path, text: str) -> tuple[str, Path]:
    with pytest.raises(ArchConfigError) as err:
        load_text(tmp_path, text)
    return str(err.value), tmp_path / "m2vit.yaml"


def test_negative_lanes_message_has_file_line_field_and_value(tmp_path):
    bad = mutate("lanes: 64", "lanes: -4", start="single:")
    message, path = error_for(tmp_path, bad)
    line = line_of(bad, "lanes: -4")
    assert message == f"{path}:{line}: engines.mpma.modes.single.lanes: -4: must be a positive integer"


def test_missing_field_points_at_its_parent(tmp_path):
    bad = mutate("  latency: 60 ns", "  # latency removed")
    message, path = error_for(tmp_path, bad)
    assert f"{path}:{line_of(bad, 'dram:')}: dram.latency: missing required field" in message
    assert "e.g. '60 ns'" in message


def test_wrong_dimension(tmp_path):
    bad = mutate("peak_bandwidth: 19.2 GB/s", "peak_bandwidth: 19.2 MHz")
    message, path = error_for(tmp_path, bad)
    line = line_of(bad, "19.2 MHz")
    assert (
        message == f"{path}:{line}: dram.peak_bandwidth: '19.2 MHz': "
        "expected a bandwidth like '19.2 GB/s', not a frequency"
    )


def test_bare_number_for_a_size(tmp_path):
    bad = mutate("capacity: 256 KiB", "capacity: 262144")
    message, path = error_for(tmp_path, bad)
    assert message == (
        f"{path}:{line_of(bad, '262144')}: buffers.weight_buffer.capacity: 262144: "
        "expected a size like '256 KiB': a bare number has no unit"
    )


def test_unknown_engine_kind_lists_allowed(tmp_path):
    bad = mutate("kind: shift_add_tree", "kind: systolic")
    message, path = error_for(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, 'systolic')}: engines.sat.kind: 'systolic': unknown engine kind; "
        "allowed: mac_array, shift_add_tree, vector" == message
    )


def test_unknown_op_kind_lists_ir_kinds(tmp_path):
    bad = mutate("op_kinds: [conv_depthwise]", "op_kinds: [conv_depthwise, conv3d]", start="single:")
    message, path = error_for(tmp_path, bad)
    allowed = ", ".join(k.value for k in OpKind)
    line = line_of(bad, "conv3d")
    assert (
        message == f"{path}:{line}: engines.mpma.modes.single.op_kinds[1]: 'conv3d': unknown op kind; "
        f"did you mean 'conv_dense'? allowed: {allowed}"
    )


def test_unknown_scheme_lists_ir_schemes(tmp_path):
    bad = mutate("schemes: [apot]", "schemes: [pot]")
    message, path = error_for(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, '[pot]')}: engines.sat.modes.shift_add.schemes[0]: 'pot': unknown scheme; "
        "did you mean 'apot'? allowed: uniform, apot, float" == message
    )


def test_undefined_energy_reference_lists_defined_entries(tmp_path):
    bad = mutate("energy_per_op: mac_int4x8", "energy_per_op: mac_int9")
    message, path = error_for(tmp_path, bad)
    line = line_of(bad, "mac_int9")
    assert message.startswith(
        f"{path}:{line}: engines.mpma.modes.single.energy_per_op: 'mac_int9': not defined "
        "in energy:; did you mean 'mac_int8'? defined: apot_shift_add, apot_term, axi_byte,"
    )


def test_energy_reference_of_wrong_dimension(tmp_path):
    bad = mutate("read_energy: bram_read", "read_energy: mac_int8", start="weight_buffer:")
    message, path = error_for(tmp_path, bad)
    line = line_of(bad, "read_energy: mac_int8")
    assert message == (
        f"{path}:{line}: buffers.weight_buffer.read_energy: 'mac_int8': is an energy entry but this "
        "field needs an energy per byte like '68 pJ/B'"
    )


def test_clock_without_integer_picosecond_period(tmp_path):
    bad = mutate("clock: 200 MHz", "clock: 300 MHz")
    message, path = error_for(tmp_path, bad)
    assert message.startswith(
        f"{path}:{line_of(bad, 'clock:')}: clock: '300 MHz': has a period of 3333 ps, "
        "not a whole number of picoseconds"
    )
    assert "allowed: e.g. 200 MHz (5000 ps)" in message


def test_bad_yaml_syntax_gives_file_and_line(tmp_path):
    bad = mutate("    rows: 32 ", "    rows: [32 ")
    message, path = error_for(tmp_path, bad)
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message
    reported = int(message.split(":")[1])
    assert abs(reported - line_of(bad, "rows: [32")) <= 2  # the parser notices at or just after the bracket


def test_file_not_found(tmp_path):
    with pytest.raises(ArchConfigError) as err:
        load_arch(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_duplicated_key(tmp_path):
    bad = mutate("    rows: 32 ", "    rows: 32\n    rows: 16 ")
    message, path = error_for(tmp_path, bad)
    first = line_of(bad, "rows: 32")
    assert message == (
        f"{path}:{first + 1}: engines.mpma.rows: duplicated key (first at line {first}); "
        "YAML would silently keep only the last one"
    )


@pytest.mark.parametrize(
    "text, got", [("- a\n- b\n", "a list"), ("", "an empty file"), ("just words\n", "a str")]
)
def test_top_level_must_be_a_mapping(tmp_path, text, got):
    message, path = error_for(tmp_path, text)
    assert message.startswith(f"{path}:1: top level must be a mapping with keys name, description, clock")
    assert message.endswith(got)


def test_unknown_field_lists_allowed(tmp_path):
    bad = mutate("    rows: 64 ", "    rowz: 64 ", start="sat:")
    message, path = error_for(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, 'rowz')}: engines.sat.rowz: unknown key; did you mean 'rows'? "
        "allowed: kind, rows, pipeline_cycles, leakage, leakage_units, register_energy, modes"
    ) in message
    assert "engines.sat.rows: missing required field" in message


def test_all_errors_reported_together(tmp_path):
    bad = mutate("lanes: 64", "lanes: -4", start="single:")
    bad = mutate("clock: 200 MHz", "clock: 300 MHz", text=bad)
    bad = mutate("energy_per_op: vec_op", "energy_per_op: vec", text=bad)
    message, path = error_for(tmp_path, bad)
    assert message.startswith(f"{path}: 3 problems in architecture config:")
    for field in ("clock:", "engines.mpma.modes.single.lanes:", "engines.vector.modes.simd.energy_per_op:"):
        assert field in message


def test_missing_efficientvit_kind(tmp_path):
    bad = mutate("op_kinds: [add, div, pool", "op_kinds: [add, pool")
    message, path = error_for(tmp_path, bad)
    assert f"{path}:{line_of(bad, 'engines:')}: engines: no engine mode lists op kind(s) div" in message


def test_energy_source_needs_a_provenance_tag(tmp_path):
    untagged = (
        'energy:\n  mac_custom_lut:\n    value: 5 pJ\n    source: "INT8 MAC on LUTs, estimated from a '
        'Vivado report of a similar design"\nengines:'
    )
    bad = mutate("\nengines:", "\n" + untagged)
    message, path = error_for(tmp_path, bad)
    value = show(yaml.safe_load(bad)["energy"]["mac_custom_lut"]["source"])
    assert value.startswith("'INT8 MAC") and value.endswith("...") and len(value) == 60  # long values are cut
    assert f"energy.mac_custom_lut.source: {value}: must start with a provenance tag [S]" in message


def test_each_content_held_by_exactly_one_buffer(tmp_path):
    bad = mutate("holds: [activations]", "holds: [weights]")
    message, path = error_for(tmp_path, bad)
    assert "buffers: exactly one buffer must hold weights" in message
    assert "buffers: exactly one buffer must hold activations (holds: [activations]); found: none" in message


def test_wrong_container_type(tmp_path):
    data = yaml.safe_load(TEXT)
    data["engines"]["sat"]["modes"] = 5
    message, path = error_for(tmp_path, yaml.safe_dump(data, sort_keys=False))
    assert message.endswith("engines.sat.modes: 5: must be a mapping of keys to values")


def test_redumped_dict_missing_field_points_to_its_mapping(tmp_path):
    data = yaml.safe_load(TEXT)
    del data["engines"]["sat"]["rows"]
    text = yaml.safe_dump(data, sort_keys=False)
    message, path = error_for(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, '  sat:')}: engines.sat.rows: missing required field")


def test_missing_baseline_file(tmp_path):
    bad = mutate("arch: uniform_int8.yaml", "arch: nowhere.yaml")
    message, path = error_for(tmp_path, bad)
    assert message == (
        f"{path}:{line_of(bad, 'nowhere')}: baseline.arch: 'nowhere.yaml': file not found "
        f"(looked for {tmp_path / 'nowhere.yaml'}); allowed: a name (`archsim list`) or a path "
        "relative to this file"
    )


def _value_lines():
    return [i for i, line in enumerate(TEXT.splitlines()) if re.match(r"^\s+\w+: \S", line)]


def test_no_mutation_escapes_as_a_raw_python_error(tmp_path):
    """Delete each line, or replace each value with junk: only ArchConfigError may come out."""
    lines = TEXT.splitlines()
    variants = ["\n".join(lines[:i] + lines[i + 1 :]) for i in range(len(lines))]
    for i in _value_lines():
        key = lines[i].split(":")[0]
        for junk in ("{}", "-1", "abc"):
            variants.append("\n".join(lines[:i] + [f"{key}: {junk}"] + lines[i + 1 :]))
    failures = 0
    for text in variants:
        try:
            load_text(tmp_path, text)
        except ArchConfigError as err:
            assert str(err).startswith(str(tmp_path / "m2vit.yaml"))
            failures += 1
    assert failures > len(variants) // 2  # most mutations must be caught


# -- params: a typed section -----------------------------------------------------------------


def test_params_are_typed_and_reachable_as_a_mapping(tmp_path):
    spec, _ = load_text(
        tmp_path,
        mutate(
            "params: {sat_lane_area_in_mult8: 0.5}",
            "params: {sat_lane_area_in_mult8: 0.5, min_tiles: 2, max_tiles: 8}",
        ),
    )
    assert isinstance(spec.params, ArchParams)
    assert dict(spec.params) == {"sat_lane_area_in_mult8": 0.5, "min_tiles": 2, "max_tiles": 8}
    assert (
        spec.params.get("min_tiles", 4) == 2 and spec.params["max_tiles"] == 8 and spec.params.min_tiles == 2
    )
    assert hash(spec.params) == hash(
        ArchParams({"max_tiles": 8, "min_tiles": 2, "sat_lane_area_in_mult8": 0.5})
    )
    with pytest.raises(AttributeError):
        spec.params.min_tiles = 3  # read-only, like the rest of the spec
    default, _ = load_text(tmp_path, TEXT)
    assert default.params.get("min_tiles", 4) == 4  # not set: the reader's default applies
    with pytest.raises(AttributeError, match="params has no 'max_tiles' set"):
        _ = default.params.max_tiles


def test_set_params_reach_the_memory_plan(tmp_path):
    from sim_fixtures import chain, pointwise

    from archsim.sim.mapping import map_graph
    from archsim.sim.plan import plan_graph

    graph = chain(pointwise("pw", 256, 256, 14))  # input from DRAM: max_tiles position chunks
    tiles = {}
    for text in ("{sat_lane_area_in_mult8: 0.5}", "{max_tiles: 8}", "{max_tiles: 4}"):
        spec, _ = load_text(tmp_path, mutate("params: {sat_lane_area_in_mult8: 0.5}", f"params: {text}"))
        tiles[text] = len(plan_graph(graph, spec, map_graph(graph, spec))["pw"].tiles)
    # not set: the reader's default 16, capped at the 14 output rows (conv tiles are whole rows)
    assert list(tiles.values()) == [14, 8, 4]


@pytest.mark.parametrize(
    "new, expected",
    [
        (
            "params: {min_tile: 2}",
            "params.min_tile: unknown key; did you mean 'min_tiles'? allowed: min_tiles, "
            "max_tiles, sat_lane_area_in_mult8",
        ),
        ("params: {max_tiles: 0}", "params.max_tiles: 0: must be an integer >= 1"),
        ("params: {min_tiles: 2.5}", "params.min_tiles: 2.5: must be an integer >= 1"),
        ("params: {sat_lane_area_in_mult8: 0}", "params.sat_lane_area_in_mult8: 0: must be a number > 0"),
        (
            "params: {sat_lane_area_in_mult8: half}",
            "params.sat_lane_area_in_mult8: 'half': must be a number > 0",
        ),
        ("params: [4, 16]", "params: [4, 16]: must be a mapping of keys to values"),
    ],
)
def test_params_errors(tmp_path, new, expected):
    bad = mutate("params: {sat_lane_area_in_mult8: 0.5}", new)
    message, path = error_for(tmp_path, bad)
    assert message == f"{path}:{line_of(bad, new)}: {expected}"


# -- baseline: a name or a relative path ----------------------------------------------------


def test_baseline_by_name_resolves_without_a_file_next_to_the_config(tmp_path):
    from archsim import flow, resources

    path = tmp_path / "mine.yaml"  # a copy elsewhere, with no uniform_int8.yaml beside it
    path.write_text(mutate("arch: uniform_int8.yaml", "arch: uniform_int8"))
    spec = load_arch(path)
    arch, policy = flow.resolve_baseline(spec)
    assert arch.resolve() == (resources.bundled_dir("arch") / "uniform_int8.yaml").resolve()
    assert policy == "uniform_w8a8"
    bundled = flow.resolve_baseline(load_arch(M2VIT))[0]  # the bundled file's relative path
    assert bundled.resolve() == arch.resolve()


def test_a_relative_baseline_path_that_is_missing_suggests_the_name(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(TEXT)
    with pytest.raises(ArchConfigError) as err:
        load_arch(path)
    assert str(err.value) == (
        f"{path}:{line_of(TEXT, 'baseline: {')}: baseline.arch: 'uniform_int8.yaml': "
        f"file not found (looked for {tmp_path / 'uniform_int8.yaml'}); "
        "an architecture config named 'uniform_int8' exists: give the name "
        "uniform_int8 instead of a path; allowed: a name (`archsim list`) or a path relative to this file"
    )


def test_baseline_policy_must_exist(tmp_path):
    bad = mutate("policy: uniform_w8a8}", "policy: uniform_w8}")
    message, path = error_for(tmp_path, bad)
    assert message.startswith(
        f"{path}:{line_of(bad, 'baseline: {')}: baseline.policy: 'uniform_w8': unknown name; "
        "did you mean 'uniform_w8a8'? known: all_apot,"
    )


def test_content_digest_identifies_the_file(tmp_path):
    import hashlib

    spec = load_arch(M2VIT)
    assert spec.source_sha256 == hashlib.sha256(M2VIT.read_bytes()).hexdigest()
    copy, _ = load_text(tmp_path, TEXT + "\n# a comment changes the file\n")
    assert copy.source_sha256 != spec.source_sha256


def test_a_baseline_policy_path_is_relative_to_the_config(tmp_path, monkeypatch):
    from archsim import flow

    (tmp_path / "mine_policy.yaml").write_text("base: uniform_w8a8\nact_bits: 8\n")
    path = tmp_path / "mine.yaml"
    path.write_text(
        mutate(
            "{arch: uniform_int8.yaml, policy: uniform_w8a8}",
            "{arch: uniform_int8, policy: mine_policy.yaml}",
        )
    )
    monkeypatch.chdir(tmp_path.parent)  # not the config's folder
    _, policy = flow.resolve_baseline(load_arch(path))
    assert policy == str((tmp_path / "mine_policy.yaml").resolve())
