"""Quantity strings of the architecture YAML ("200 MHz", "19.2 GB/s", "68 pJ/B") to SI numbers.

Parsing uses **pint**: it is well maintained, handles SI and binary prefixes and compound
units ("pJ/B", "B/cycle") and checks dimensions, so we do not hand-roll a unit grammar.
We build a *small private registry* instead of pint's default one because (a) pint's
default treats bits and bytes as dimensionless, which would let "64" pass as "64 B", and
(b) it defines "B" ambiguously and has no "KB"; a private registry also keeps the meaning of
every symbol here, in one place. The registry is created lazily and cached: importing pint
and building a registry costs ~0.3-0.5 s, which ``import archsim.arch`` must not pay.

Returned numbers are in SI base units: Hz, s, bytes, bytes/s, bytes/cycle, cycles, J, J/B, W.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from archsim.errors import ConfigError

# One line per symbol; pint definition syntax. KB is decimal (1000 B), KiB binary (1024 B).
_DEFINITIONS = """
femto- = 1e-15 = f
pico- = 1e-12 = p
nano- = 1e-9 = n
micro- = 1e-6 = u = µ
milli- = 1e-3 = m
kilo- = 1e3 = k
mega- = 1e6 = M
giga- = 1e9 = G
tera- = 1e12 = T
kibi- = 2**10 = Ki
mebi- = 2**20 = Mi
gibi- = 2**30 = Gi
tebi- = 2**40 = Ti
second = [time] = s = sec
byte = [data] = B
bit = byte / 8
KB = 1000 * byte
cycle = [cycle]
joule = [energy] = J
watt = joule / second = W
hertz = 1 / second = Hz
"""


@dataclass(frozen=True)
class Dimension:
    """One kind of quantity a YAML field may hold."""

    name: str  # as used in messages: "a frequency"
    pint_dims: str  # pint dimensionality, e.g. "1 / [time]"
    base_unit: str  # SI unit the value is returned in
    example: str  # a correct example for error messages


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("frequency", "1 / [time]", "Hz", "200 MHz"),
        Dimension("time", "[time]", "s", "45 ns"),
        Dimension("size", "[data]", "B", "256 KiB"),
        Dimension("bandwidth", "[data] / [time]", "B/s", "19.2 GB/s"),
        Dimension("bytes per cycle", "[data] / [cycle]", "B/cycle", "64 B/cycle"),
        Dimension("cycles", "[cycle]", "cycle", "2 cycles"),
        Dimension("energy", "[energy]", "J", "0.14 pJ"),
        Dimension("energy per byte", "[energy] / [data]", "J/B", "68 pJ/B"),
        Dimension("power", "[energy] / [time]", "W", "37 mW"),
    )
}

# [choice] relative tolerance for "a whole number": far above float64 rounding of a decimal
# literal times an SI prefix (~1e-16), far below any real fraction of a byte or cycle
WHOLE_REL_TOL = 1e-9

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


class UnitError(ConfigError):
    """A quantity string that is malformed or has the wrong dimension.

    ``str()`` is the full message (with the value); ``allowed`` says only what is allowed, for
    renderers that show the value themselves (``file:line: field: value: allowed``).
    """

    def __init__(self, message: str, allowed: str | None = None):
        super().__init__(message)
        self.allowed = allowed if allowed is not None else message


@lru_cache(maxsize=1)
def _registry():
    import pint  # deferred: slow import, only needed when a YAML is parsed

    registry = pint.UnitRegistry(None)  # empty: only the symbols defined above exist
    for line in _DEFINITIONS.strip().splitlines():
        registry.define(line)
    return registry


def _article(name: str) -> str:
    return "an" if name[0] in "aeiou" else "a"


def split_number_unit(text: str) -> tuple[float, str]:
    """'68 pJ/B' -> (68.0, 'pJ/B'). Raises UnitError if it does not start with a number."""
    match = _NUMBER.match(text)
    if not match:
        raise UnitError(f"expected a number followed by a unit, got {text!r}")
    return float(match.group(1)), match.group(2)


_KNOWN = (
    "Hz, s, B (KB=1000 B, KiB=1024 B), B/s, B/cycle, cycle, J, J/B, W "
    "with prefixes f p n u m k M G T Ki Mi Gi"
)


@lru_cache(maxsize=256)
def _unit_info(unit: str) -> tuple[str | None, float, str | None]:
    """(dimension name or None, factor to that dimension's SI unit, parse error or None) of a unit.

    Cached: a config repeats a handful of units, and a pint parse costs about a millisecond.
    """
    import pint

    registry = _registry()
    try:
        quantity = registry(unit)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError, TypeError):
        return None, 0.0, f"unknown unit {unit!r}"
    except Exception:  # pint's tokenizer raises assorted errors on garbage
        return None, 0.0, f"cannot parse unit {unit!r}"
    if not isinstance(quantity, registry.Quantity):  # e.g. "2" alone parses to a plain number
        return None, 0.0, f"cannot parse unit {unit!r}"
    for dim in DIMENSIONS.values():
        if quantity.dimensionality == registry.get_dimensionality(dim.pint_dims):
            return dim.name, float(quantity.to(_pint_unit(dim)).magnitude), None
    return None, 0.0, None


def _quantity(text: object, hint: str) -> tuple[float, str, str | None, float]:
    """(number, unit as written, dimension name or None, factor to SI) of a quantity string."""
    bare = f"expected {hint}: a bare number has no unit"
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected {hint}, got {text!r}", f"expected {hint}")
    if isinstance(text, (int, float)):
        raise UnitError(f"{bare}, got {text!r}", bare)
    try:
        number, unit = split_number_unit(text)
    except UnitError:
        raise UnitError(f"expected {hint}, got {text!r}", f"expected {hint}") from None
    if not unit:
        raise UnitError(f"{bare}, got {text!r}", bare)
    dim_name, factor, problem = _unit_info(unit)
    if problem is not None:
        known = f" (known: {_KNOWN})" if problem.startswith("unknown") else ""
        raise UnitError(
            f"expected {hint}: {problem} in {text!r}{known}", f"expected {hint}: {problem}{known}"
        )
    return number, unit, dim_name, factor


def _describe(dim: Dimension) -> str:
    return f"{_article(dim.name)} {dim.name} like {dim.example!r}"


def parse_quantity(text: object, expected: str, where: str = "") -> float:
    """Parse ``text`` as a quantity of dimension ``expected`` (a key of DIMENSIONS); SI number.

    ``where`` (e.g. "dram.peak_bandwidth") prefixes the error message when given.
    """
    dim = DIMENSIONS[expected]
    prefix = f"{where}: " if where else ""
    try:
        number, _unit, dim_name, factor = _quantity(text, _describe(dim))
    except UnitError as err:
        raise UnitError(prefix + str(err), err.allowed) from None
    if dim_name != expected:
        got = _article(dim_name) + " " + dim_name if dim_name else "a unit of unknown dimension"
        raise UnitError(
            f"{prefix}expected {_describe(dim)}, got {text!r} ({dim_name or 'unknown dimension'})",
            f"expected {_describe(dim)}, not {got}",
        )
    return number * factor


def _pint_unit(dim: Dimension) -> str:
    return {
        "Hz": "hertz",
        "s": "second",
        "B": "byte",
        "B/s": "byte / second",
        "B/cycle": "byte / cycle",
        "cycle": "cycle",
        "J": "joule",
        "J/B": "joule / byte",
        "W": "watt",
    }[dim.base_unit]


def classify(text: object) -> str | None:
    """The name of the dimension ``text`` has ('energy per byte', ...), or None if unparseable/unknown."""
    try:
        return _quantity(text, "a quantity")[2]
    except UnitError:
        return None


def parse_any(text: object, allowed: tuple[str, ...], where: str = "") -> tuple[float, str, str]:
    """Parse a quantity that may have any of the ``allowed`` dimensions.

    Returns (SI value, dimension name, unit as written). Used for energy-table entries, which
    may be an energy per operation, an energy per byte or a power.
    """
    prefix = f"{where}: " if where else ""
    examples = " or ".join(_describe(DIMENSIONS[a]) for a in allowed)
    dim_name = classify(text)
    if dim_name not in allowed:
        try:
            _quantity(text, examples)
        except UnitError as err:
            raise UnitError(prefix + str(err), err.allowed) from None
        got = _article(dim_name) + " " + dim_name if dim_name else "a unit of unknown dimension"
        raise UnitError(f"{prefix}expected {examples}, got {text!r}", f"expected {examples}, not {got}")
    value = parse_quantity(text, dim_name, where)
    return value, dim_name, split_number_unit(str(text))[1]


def whole(value: float, what: str, text: object) -> int:
    """``value`` as an int, or UnitError if it is not (within rounding) a whole number of ``what``."""
    rounded = round(value)
    if abs(value - rounded) > WHOLE_REL_TOL * max(1.0, abs(value)):
        raise UnitError(
            f"must be a whole number of {what}, got {text!r} = {value:g} {what}",
            f"must be a whole number of {what} (it is {value:g} {what})",
        )
    return int(rounded)
