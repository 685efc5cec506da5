"""Quantity strings -> SI numbers, and the errors for wrong units or dimensions."""

import pytest

from archsim.arch.units import UnitError, classify, parse_any, parse_quantity, whole


@pytest.mark.parametrize(
    "text, expected, si",
    [
        ("200 MHz", "frequency", 200e6),
        ("19.2 GB/s", "bandwidth", 19.2e9),
        ("256 KiB", "size", 262144),
        ("256 KB", "size", 256000),
        ("1 MiB", "size", 1048576),
        ("2 GB", "size", 2e9),
        ("0.14 pJ", "energy", 0.14e-12),
        ("68 pJ/B", "energy per byte", 68e-12),
        ("37 mW", "power", 0.037),
        ("45 ns", "time", 45e-9),
        ("64 B/cycle", "bytes per cycle", 64),
        ("2 cycles", "cycles", 2),
        ("1.5e3 fJ", "energy", 1.5e-12),
    ],
)
def test_parses_to_si(text, expected, si):
    assert parse_quantity(text, expected) == pytest.approx(si, rel=1e-12)


def test_wrong_dimension_names_expected_and_got():
    with pytest.raises(UnitError) as err:
        parse_quantity("19.2 GB/s", "frequency", "clock")
    assert str(err.value) == "clock: expected a frequency like '200 MHz', got '19.2 GB/s' (bandwidth)"


@pytest.mark.parametrize("bare", [64, 64.0, "64"])
def test_bare_number_is_rejected_with_the_expected_unit(bare):
    with pytest.raises(UnitError, match=r"expected a size like '256 KiB': a bare number has no unit"):
        parse_quantity(bare, "size")


def test_unknown_unit_lists_known_units():
    with pytest.raises(UnitError, match=r"unknown unit 'furlong'.*known: Hz, s, B"):
        parse_quantity("3 furlong", "time")


@pytest.mark.parametrize("junk", [None, True, [1], "MHz", ""])
def test_non_quantities_are_unit_errors(junk):
    with pytest.raises(UnitError, match="expected a frequency"):
        parse_quantity(junk, "frequency")


def test_unit_error_is_a_value_error():
    assert issubclass(UnitError, ValueError)


def test_bits_are_eighth_bytes_and_bytes_are_not_dimensionless():
    assert parse_quantity("64 bit", "size") == 8
    assert classify("64") is None


def test_parse_any_reports_dimension_and_unit_as_written():
    assert parse_any("68 pJ/B", ("energy", "energy per byte", "power")) == pytest.approx(
        (68e-12, "energy per byte", "pJ/B")
    )
    with pytest.raises(UnitError, match="expected an energy like '0.14 pJ' or an energy per byte"):
        parse_any("5 ns", ("energy", "energy per byte"))


def test_whole_rejects_fractions():
    assert whole(64.0, "bytes", "64 B") == 64
    with pytest.raises(UnitError, match="whole number of bytes"):
        whole(0.5, "bytes", "4 bit")


def test_import_of_archsim_arch_does_not_load_pint():
    import subprocess
    import sys

    code = "import sys, archsim.arch; print('pint' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
