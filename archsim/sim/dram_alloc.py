"""Deterministic DRAM address allocation: every tensor gets a base byte address.

Semantics (docs/modelling.md, "DRAM, transaction level"):

- Input: tensors as (name, size in bytes, kind), kind ``weights`` or ``activation``, in the caller's
  order (the graph's execution order). The layout depends on nothing else: no hashing, no sizes of
  other runs, so identical graphs get identical addresses on any machine.
- Weights first, then activations, each group in input order, every tensor starting at a multiple
  of ``alignment`` [choice: 4 KiB, a page: a multiple of every preset's burst x channels (at most
  64 B x 8 = 512 B for HBM2) so a tensor starts on burst 0 of channel 0, and small enough that
  consecutive tensors spread over banks instead of all starting in bank 0 of a new row block].
- The activation region starts at the next multiple of ``region_alignment`` after the weights
  [choice: 1 MiB], so weight streams and activation tiles do not share rows.
- No reuse: a tensor keeps its space for the whole run (DRAM capacity is GiB, a B1 run needs tens of
  MB), so two tensors never alias and the address of a tile is base + offset.
- Errors name the tensor: a duplicate name, a size < 1, an unknown kind, or a layout beyond ``capacity``.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("weights", "activation")
DEFAULT_ALIGNMENT = 4096  # [choice] see the module docstring
DEFAULT_REGION_ALIGNMENT = 1 << 20  # [choice] see the module docstring


@dataclass(frozen=True)
class Allocation:
    name: str
    kind: str
    base: int  # byte address
    size: int  # bytes

    @property
    def end(self) -> int:
        return self.base + self.size


def allocate(
    tensors,
    capacity: int | None = None,
    alignment: int = DEFAULT_ALIGNMENT,
    region_alignment: int = DEFAULT_REGION_ALIGNMENT,
) -> dict[str, Allocation]:
    """Lay out ``tensors`` (iterable of (name, size, kind)); returns name -> Allocation in layout order."""
    for value, what in ((alignment, "alignment"), (region_alignment, "region_alignment")):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} {value!r} must be an integer >= 1")
    items = list(tensors)
    seen = set()
    for name, size, kind in items:
        if name in seen:
            raise ValueError(f"tensor {name!r} is listed twice")
        seen.add(name)
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"tensor {name!r}: size {size!r} must be an integer number of bytes >= 1")
        if kind not in KINDS:
            raise ValueError(f"tensor {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    out: dict[str, Allocation] = {}
    cursor = 0
    for group in KINDS:
        if group == "activation" and cursor:
            cursor = _round_up(cursor, region_alignment)
        for name, size, kind in items:
            if kind != group:
                continue
            base = _round_up(cursor, alignment)
            if capacity is not None and base + size > capacity:
                raise ValueError(
                    f"tensor {name!r} ({size} B) does not fit: it would end at {base + size} B, "
                    f"beyond the DRAM capacity of {capacity} B"
                )
            out[name] = Allocation(name, kind, base, size)
            cursor = base + size
    return out


def _round_up(x: int, step: int) -> int:
    return -(-x // step) * step
