"""Named energy tables (archsim.energy.tables): package data, chosen by name, bad input at file:line."""

import re
from pathlib import Path

import pytest

from archsim.arch.errors import ArchConfigError
from archsim.arch.loader import load_arch
from archsim.energy import tables
from archsim.energy.tables import EnergyTableError, load_table, load_table_file, sram_entries

CONFIGS = Path(__file__).resolve().parents[2] / "arch_configs"
M2VIT_ASIC = (CONFIGS / "m2vit_asic28.yaml").read_text()
TABLE_ASIC = (tables.table_dir() / "asic28.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def write(tmp_path: Path, text: str, name: str = "m2vit_asic28.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "uniform_int8_asic28.yaml").write_text((CONFIGS / "uniform_int8_asic28.yaml").read_text())
    return path


def arch_error(tmp_path: Path, text: str) -> tuple[str, Path]:
    path = write(tmp_path, text)
    with pytest.raises(ArchConfigError) as err:
        load_arch(path)
    return str(err.value), path


def test_bundled_tables_load_and_every_entry_has_a_source():
    assert tables.table_names() == ["asic28", "fpga_zcu102"]
    for name in tables.table_names():
        table = load_table(name)
        assert table.name == name
        for e in table.entries:
            assert re.match(r"(\[(S|C|I)(/(S|C|I))*\]|assumed)", e.source), e
            assert e.origin == f"table {name}"


def test_asic28_numbers_are_energy_md_section_7():
    t = load_table("asic28")
    pj = 1e-12
    assert t.entry("mac_int8").value == pytest.approx(0.14 * pj)
    assert t.entry("apot_term").value == pytest.approx(t.entry("apot_shift_add").value / 2)
    assert t.entry("pe_register").value == pytest.approx(0.04 * pj)
    assert t.entry("ddr4_act_pre").value == pytest.approx(3.35e-9)
    assert t.entry("sram_leakage_per_kib").value == pytest.approx(0.028e-3)
    assert [c.up_to_bytes for c in t.sram_classes] == [1024, 16384, 65536, 262144, 1048576]
    assert t.width_factors == ((64, 1.0), (128, 0.75), (256, 0.55))


def test_sram_class_by_capacity_and_port_width():
    t = load_table("asic28")
    # 256 KiB with a 128 B (1024-bit) port: the 128-256 KB class (1.30 pJ/B at 64 bits) x the 256-bit factor
    read, write_ = sram_entries(t, "wb", 256 * 1024, 128)
    assert read.value == pytest.approx(1.30e-12 * 0.55)
    assert write_.value == pytest.approx(1.30e-12 * 0.55 * 0.8)
    # 8 KiB, 16 B (128-bit) port: the <= 16 KiB class x 0.75
    assert sram_entries(t, "x", 8192, 16)[0].value == pytest.approx(0.35e-12 * 0.75)
    # one byte over the class bound goes to the next class
    assert sram_entries(t, "x", 16385, 8)[0].value == pytest.approx(0.70e-12)
    with pytest.raises(ValueError, match="above the largest SRAM class"):
        sram_entries(t, "x", 2 * 1024 * 1024, 8)


def test_bundled_configs_use_the_named_tables():
    for name, table in (
        ("m2vit", "fpga_zcu102"),
        ("m2vit_asic28", "asic28"),
        ("uniform_int8", "fpga_zcu102"),
    ):
        spec = load_arch(CONFIGS / f"{name}.yaml")
        assert spec.energy_table_name == table
        assert spec.engine("vector").modes[0].energy_per_op.origin == f"table {table}"
    assert load_arch(CONFIGS / "peer32_ws.yaml").energy_table_name == ""  # the inline form still works


def test_override_replaces_one_entry_and_nothing_else(tmp_path):
    base = load_arch(write(tmp_path, M2VIT_ASIC))
    text = M2VIT_ASIC.replace(
        "energy:                 #",
        'energy_overrides:\n  mac_int8: {value: 0.56 pJ, source: "[C] Aladdin int8 MAC x0.59"}\nenergy:  #',
    )
    spec = load_arch(write(tmp_path, text))
    assert spec.engine("mpma").mode("merged").energy_per_op.value == pytest.approx(0.56e-12)
    assert spec.engine("mpma").mode("merged").energy_per_op.origin == "override of table asic28"
    changed = [a.name for a, b in zip(base.energy_table, spec.energy_table) if a != b]
    assert changed == ["mac_int8"]


def test_unknown_table_name_lists_the_tables(tmp_path):
    bad = M2VIT_ASIC.replace("energy_table: asic28", "energy_table: asic22")
    message, path = arch_error(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, 'energy_table')}: energy_table: 'asic22': unknown energy table; "
        "did you mean 'asic28'? allowed: asic28, fpga_zcu102"
    ) in message


def test_override_of_an_entry_the_table_lacks(tmp_path):
    bad = M2VIT_ASIC.replace(
        "energy:                 #",
        'energy_overrides:\n  mac_int9: {value: 0.2 pJ, source: "assumed: x"}\nenergy:  #',
    )
    message, path = arch_error(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, 'mac_int9')}: energy_overrides.mac_int9: not an entry of energy table asic28; "
        "did you mean 'mac_int8'? to add an entry, put it under energy:"
    ) in message


def test_override_of_another_dimension(tmp_path):
    bad = M2VIT_ASIC.replace(
        "energy:                 #",
        'energy_overrides:\n  mac_int8: {value: 0.2 pJ/B, source: "assumed: x"}\nenergy:  #',
    )
    message, path = arch_error(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, 'mac_int8: {')}: energy_overrides.mac_int8.value: '0.2 pJ/B': is energy per "
        "byte, but the table's mac_int8 is energy"
    ) in message


def test_inline_entry_may_not_shadow_the_table(tmp_path):
    bad = M2VIT_ASIC.replace("  vec_leak:", '  noc_byte: {value: 1 pJ/B, source: "assumed: x"}\n  vec_leak:')
    message, path = arch_error(tmp_path, bad)
    assert (
        f"{path}:{line_of(bad, 'noc_byte: {')}: energy.noc_byte: already an entry of energy table asic28; "
        "to replace it, put it under energy_overrides:"
    ) in message


def test_buffer_without_energy_is_priced_by_the_table(tmp_path):
    text = M2VIT_ASIC.replace("    read_energy: sram_256k_read\n    write_energy: sram_256k_write\n", "")
    spec = load_arch(write(tmp_path, text))
    wb = next(b for b in spec.buffers if b.name == "weight_buffer")
    assert wb.read_energy.value == pytest.approx(1.30e-12 * 0.55)  # 256 KiB, 128 B/cycle = 1024-bit port
    assert wb.read_energy.origin == "table asic28 (sram)"


def table_error(tmp_path: Path, text: str) -> tuple[str, Path]:
    path = tmp_path / "asic28.yaml"
    path.write_text(text)
    with pytest.raises(EnergyTableError) as err:
        load_table_file(path)
    return str(err.value), path


def test_table_entry_without_source(tmp_path):
    bad = TABLE_ASIC.replace(
        "    source: \"[C] Horowitz ISSCC'14 45 nm: 8-bit mult 0.2 pJ + ~24-bit accumulate add 0.075 pJ "
        '(interpolated [I]), x0.51 to 28 nm (Stillmaker-Baas, Integration 2017)"\n',
        "",
        1,
    )
    message, path = table_error(tmp_path, bad)
    assert message.startswith(
        f"{path}:{line_of(bad, '  mac_int8:')}: entries.mac_int8.source: missing required"
    )


def test_table_entry_with_wrong_unit(tmp_path):
    bad = TABLE_ASIC.replace("value: 0.14 pJ\n", "value: 0.14 pJ/cycle\n", 1)
    message, path = table_error(tmp_path, bad)
    assert message.startswith(
        f"{path}:{line_of(bad, '0.14 pJ/cycle')}: entries.mac_int8.value: '0.14 pJ/cycle': "
    )
    assert "energy" in message


def test_table_sram_class_with_wrong_unit(tmp_path):
    bad = TABLE_ASIC.replace("read: 0.35 pJ/B", "read: 0.35 pJ")
    message, path = table_error(tmp_path, bad)
    assert message.startswith(
        f"{path}:{line_of(bad, 'read: 0.35 pJ,')}: sram.classes[1].read: '0.35 pJ': "
        "expected an energy per byte"
    )


def test_unknown_table_file_name_field(tmp_path):
    message, path = table_error(tmp_path, TABLE_ASIC.replace("name: asic28", "name: asic29"))
    assert f"{path}:{line_of(TABLE_ASIC, 'name: asic28')}: name: 'asic29': must be the file's stem" in message


def test_set_of_a_table_entry_becomes_an_override():
    from archsim.overrides import load_arch as load_with
    from archsim.overrides import parse_set

    spec = load_with(CONFIGS / "m2vit.yaml", [parse_set("energy.mac_int8.value=5 pJ")])
    entry = spec.engine("mpma").mode("merged").energy_per_op
    assert entry.value == pytest.approx(5e-12) and entry.origin == "override of table fpga_zcu102"
    assert entry.source.startswith("assumed: set by an override (table fpga_zcu102: 2.5 pJ, [I] INT8 MAC")
    both = [parse_set("energy.mac_int8.value=5 pJ"), parse_set('energy.mac_int8.source="[I] measured"')]
    assert (
        load_with(CONFIGS / "m2vit.yaml", both).engine("mpma").modes[0].energy_per_op.source == "[I] measured"
    )


def test_engine_leakage_from_mac_units(tmp_path):
    text = M2VIT_ASIC.replace("    leakage: mpma_leak\n", "    leakage_units: 1024\n")
    spec = load_arch(write(tmp_path, text))
    leak = spec.engine("mpma").leakage_power
    assert leak.value == pytest.approx(1024 * 4.0e-6) and leak.name == "mpma.leakage"
    assert leak.source.startswith("[C] 1024 MAC units x mac_unit_leakage: [C] one int8 MAC unit")
    both = M2VIT_ASIC.replace("    leakage: mpma_leak\n", "    leakage: mpma_leak\n    leakage_units: 1024\n")
    message, path = arch_error(tmp_path, both)
    assert f"{path}:{line_of(both, 'leakage_units')}: engines.mpma.leakage_units: give leakage or" in message
