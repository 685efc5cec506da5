"""Dataflow as data: how an engine mode unrolls each op family's loops
(the declaration; cycles: archsim.sim.latency).

Loop dimensions of one tile (from :class:`archsim.graph.opkinds.WorkDims`):

- ``G`` groups, ``P`` output positions (pixels, or rows of a linear / matmul), ``F`` filters per
  group, ``C`` input channels per group, ``T`` kernel taps (kh*kw); the reduction is ``K = C*T``.
- Families: ``conv`` (dense, pointwise, grouped), ``depthwise`` (G = channels, F = C = 1),
  ``linear`` and ``matmul`` (G = 1, T = 1, C = K; a matmul's F is its N columns and P its
  batch x M rows).

An :class:`Unrolling` assigns dims to the engine's ``rows`` (their product is spread over the R
rows), ``lanes`` (over the L lanes of the mode) and ``stream`` (the innermost temporal loops: the
cycles one mapping of the array streams); every other dim is an outer temporal loop. One mapping
of the array is a *fold*:

    folds  = ceil(prod(rows) / R) * ceil(prod(lanes) / L) * prod(outer)
    stream = prod(stream dims)
    core   = folds * stream

With a weight load of ``w`` cycles per fold (``weight_load``): prefetched under compute (double
buffered), ``core = w + (folds - 1) * max(stream, w) + stream``; not prefetched,
``core = folds * (w + stream)``. The fill / drain of the pipeline (``fill_cycles``, a formula of
R, L and the engine's ``pipeline`` cycles) is paid per ``tile``, per ``fold`` or once per ``layer``
(on its first tile). Every ceiling is at least its argument, so cycles >= ops / (R L) always.

Presets (:data:`PRESETS`): ``mat`` is archsim's original model and the default, so configs that
declare no dataflow keep their numbers: conv / linear / matmul filters across rows and the
reduction across lanes (Trio-ViT's MAT: Cin across a PE's lanes, Cout across PEs), depthwise
channels across lanes and output pixels across rows (Trio-ViT's R-PE); fill once per tile.
``ws_systolic`` is a weight-stationary systolic array (SCALE-Sim / TPU style: the reduction down
the rows, filters across the columns, positions streamed; depthwise one channel at a time on
kh*kw PEs) with double-buffered weights (one row per cycle, R cycles per fold) and the
2R + L - 2 wavefront fill once per layer; ``ws_systolic_unbuffered`` loads weights inside each
fold (SCALE-Sim's 2 S_R + S_C + T - 2 per fold); ``os`` is output stationary (pixels on rows,
filters on lanes, the reduction streamed); ``rpe`` is Trio-ViT's reconfigurable PE array
(depthwise as ``mat``; pointwise output stationary).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from archsim.graph.opkinds import Family

DIMS = ("G", "P", "F", "C", "T")
FAMILY_DIMS: dict[Family, tuple[str, ...]] = {
    Family.CONV: ("G", "P", "F", "C", "T"),
    Family.DEPTHWISE: ("G", "P", "T"),
    Family.LINEAR: ("P", "F", "C"),
    Family.MATMUL: ("P", "F", "C"),
}
FILL_WHEN = ("tile", "fold", "layer")
FORMULA_NAMES = ("R", "L", "pipeline")


# -- formulas ------------------------------------------------------------------------------
class FormulaError(ValueError):
    pass


_ALLOWED_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
}
_ALLOWED_CALLS = {"max": max, "min": min}


def check_formula(text) -> ast.AST:
    """Parse a cycles formula of R, L and pipeline (integers, + - * //, unary -, max(), min());
    raise FormulaError."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise FormulaError("must be a formula of R, L and pipeline, e.g. '2*R + L - 2', or an integer")
    try:
        tree = ast.parse(str(text), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"{text!r} is not a formula ({exc.msg})") from None

    def ok(node) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int) and not isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            return node.id in FORMULA_NAMES
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, ast.USub) and ok(node.operand)
        if isinstance(node, ast.BinOp):
            return type(node.op) in _ALLOWED_BINOPS and ok(node.left) and ok(node.right)
        if isinstance(node, ast.Call):
            return (
                isinstance(node.func, ast.Name)
                and node.func.id in _ALLOWED_CALLS
                and not node.keywords
                and len(node.args) >= 2
                and all(ok(a) for a in node.args)
            )
        return False

    if not ok(tree.body):
        raise FormulaError(f"{text!r}: allowed are integers, R, L, pipeline, + - * //, max(a, b), min(a, b)")
    return tree


def evaluate(text, R: int, L: int, pipeline: int) -> int:
    """The value of a cycles formula (checked by :func:`check_formula`); must be >= 0."""
    names = {"R": R, "L": L, "pipeline": pipeline}

    def ev(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.UnaryOp):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            return _ALLOWED_BINOPS[type(node.op)](ev(node.left), ev(node.right))
        return _ALLOWED_CALLS[node.func.id](*(ev(a) for a in node.args))

    value = ev(check_formula(text).body)
    if value < 0:
        raise FormulaError(f"{text!r} is {value} cycles for R={R}, L={L}, pipeline={pipeline}: must be >= 0")
    return value


# -- declarations --------------------------------------------------------------------------
@dataclass(frozen=True)
class Unrolling:
    """Which loop dims go across the rows, across the lanes, and which are streamed within a fold."""

    rows: tuple[str, ...]
    lanes: tuple[str, ...]
    stream: tuple[str, ...]

    def check(self, family: Family) -> list[str]:
        """Problems of this unrolling for ``family`` (empty when it is valid)."""
        allowed = FAMILY_DIMS[family]
        used = self.rows + self.lanes + self.stream
        problems = [
            f"{d!r} is not a loop dim of {family.value} (allowed: {', '.join(allowed)})"
            for d in used
            if d not in allowed
        ]
        repeated = sorted({d for d in used if used.count(d) > 1})
        if repeated:
            problems.append(f"{', '.join(repeated)} assigned more than once")
        return problems


@dataclass(frozen=True)
class WeightLoad:
    cycles: str  # formula of R, L, pipeline: cycles to load one fold's weights
    prefetch: bool  # loaded under the previous fold's compute (double-buffered weights)


@dataclass(frozen=True)
class Dataflow:
    name: str
    conv: Unrolling
    depthwise: Unrolling
    linear: Unrolling
    matmul: Unrolling
    fill: str = "tile"  # when fill_cycles is paid: tile | fold | layer
    fill_cycles: str = "pipeline"  # formula of R, L, pipeline
    weight_load: WeightLoad | None = None
    source: str = field(default="", compare=False)

    def unrolling(self, family: Family) -> Unrolling:
        return {
            Family.CONV: self.conv,
            Family.DEPTHWISE: self.depthwise,
            Family.LINEAR: self.linear,
            Family.MATMUL: self.matmul,
        }[family]

    def check(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the declaration is valid."""
        out = [(f.value, p) for f in FAMILY_DIMS for p in self.unrolling(f).check(f)]
        if self.fill not in FILL_WHEN:
            out.append(("fill", f"{self.fill!r}; allowed: {', '.join(FILL_WHEN)}"))
        for where, text in (
            ("fill_cycles", self.fill_cycles),
            ("weight_load.cycles", self.weight_load.cycles if self.weight_load else None),
        ):
            if text is None:
                continue
            try:
                check_formula(text)
            except FormulaError as exc:
                out.append((where, str(exc)))
        return out


def _u(rows, lanes, stream) -> Unrolling:
    return Unrolling(tuple(rows), tuple(lanes), tuple(stream))


_MAT_LINEAR = _u("F", "C", "P")
PRESETS: dict[str, Dataflow] = {
    d.name: d
    for d in (
        Dataflow(
            "mat",
            conv=_u("F", ("C", "T"), "P"),
            depthwise=_u("P", "G", "T"),
            linear=_MAT_LINEAR,
            matmul=_MAT_LINEAR,
            fill="tile",
            fill_cycles="pipeline",
            source="archsim's original model [code, Trio-ViT MAT and R-PE dataflows]",
        ),
        Dataflow(
            "ws_systolic",
            conv=_u(("C", "T"), "F", "P"),
            depthwise=_u("T", "", "P"),
            linear=_u("C", "F", "P"),
            matmul=_u("C", "F", "P"),
            fill="layer",
            fill_cycles="2*R + L - 2",
            weight_load=WeightLoad("R", prefetch=True),
            source="[S] weight-stationary systolic array: SCALE-Sim (Samajdar et al., ISPASS 2020) fold "
            "2 S_R + S_C + T - 2 without double buffering; double-buffered weights as TPU v1 / Gemmini",
        ),
        Dataflow(
            "ws_systolic_unbuffered",
            conv=_u(("C", "T"), "F", "P"),
            depthwise=_u("T", "", "P"),
            linear=_u("C", "F", "P"),
            matmul=_u("C", "F", "P"),
            fill="fold",
            fill_cycles="2*R + L - 2",
            source="[S] SCALE-Sim weight-stationary fold: 2 S_R + S_C + T - 2 (weights loaded in each fold)",
        ),
        Dataflow(
            "os",
            conv=_u("P", "F", ("C", "T")),
            depthwise=_u("P", "G", "T"),
            linear=_u("P", "F", "C"),
            matmul=_u("P", "F", "C"),
            fill="fold",
            fill_cycles="R + L - 2",
            source=(
                "[I] output-stationary systolic array: operands skewed in from two edges, R + L - 2 per fold"
            ),
        ),
        Dataflow(
            "rpe",
            conv=_u("P", "F", ("C", "T")),
            depthwise=_u("P", "G", "T"),
            linear=_u("P", "F", "C"),
            matmul=_u("P", "F", "C"),
            fill="tile",
            fill_cycles="pipeline",
            source="[code, Trio-ViT] R-PE: Cout across lanes, output pixels across PEs, self-accumulation",
        ),
    )
}
DEFAULT = PRESETS["mat"]
