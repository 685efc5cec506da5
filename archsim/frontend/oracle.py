"""The torch oracle of the functional check: the quantized graph computed independently of the executor.

:class:`archsim.quant.integer_model.IntegerModel` runs the graph's integer rules on the torch.fx
trace of the BN-folded model (torch executes the layout ops and the convolutions, with the APoT
weights as multiplied integers), so it shares only the rule functions of archsim.numerics with
the simulated hardware, not its operand assembly, tiling, engine split or shift-add datapath.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch

from archsim.functional.compare import compare_values
from archsim.functional.executor import INPUT, default_input
from archsim.graph.ir import layers
from archsim.quant.integer_model import IntegerModel

ORACLE_NAME = "IntegerModel (torch oracle, archsim.quant.integer_model)"


def oracle_values(quantized, graph: nx.DiGraph, image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every layer's integers (and the input codes) computed by the oracle on ``image``
    (default: the run's)."""
    if image is None:
        image, _ = default_input(graph)
    with torch.no_grad():
        _, integers = IntegerModel(quantized.folded, graph).run(torch.from_numpy(np.ascontiguousarray(image)))
    return integers


def check_values(
    values: dict[str, np.ndarray], quantized, graph: nx.DiGraph, image: np.ndarray | None = None
) -> dict:
    """``checks.functional``: the run's values against the oracle's, every layer (and the input codes)."""
    reference = oracle_values(quantized, graph, image)
    return compare_values(values, reference, [INPUT] + [layer.name for layer in layers(graph)], ORACLE_NAME)
