"""Workload -> dataflow graph: model, calibration data, quantization, extraction.

This is the torch half of ``archsim run``; everything after it reads only the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from torch import nn

from archsim.frontend.extract import extract_graph, quant_share_summary
from archsim.quant.integer_model import IntegerModel
from archsim.quant.quantize import QuantizedModel, compare_outputs, quantize_model

QUALITY_SEED_OFFSET = 2_000_003  # held-out synthetic images for the quality check, apart from calibration
QUALITY_SAMPLES = 4  # [choice] cheap: a few images give SQNR/cosine to ~0.1 dB / 1e-3, not accuracy


def graph_meta(workload, policy: str, batch: int) -> dict:
    """The graph attributes extract_graph needs (model, resolution, batch, policy, seed) for ``workload``."""
    return {
        "model": workload.model,
        "resolution": workload.resolution,
        "batch": batch,
        "policy": policy,
        "seed": workload.seed,
    }


@dataclass
class Built:
    """What building a workload produced: its graph, and the torch models the oracle needs."""

    graph: nx.DiGraph
    model: nn.Module  # the float model (seeded or from the checkpoint)
    quantized: QuantizedModel  # its quantization (``.folded``: the BN-folded model the graph was traced from)


def build_workload(workload, *, quality_samples: int = QUALITY_SAMPLES) -> Built:
    """Build the model of ``workload``, quantize it by its policy and extract its graph.

    ``workload`` needs .model, .resolution, .batch, .policy, .seed and .calibration
    (.samples, .batch_size, optionally .source); .checkpoint is optional. The graph carries
    ``G.graph["quant_summary"]``: the APoT share and, with ``quality_samples`` > 0, the integer
    model's output SQNR/cosine/top-1 agreement against fp32 on that many held-out synthetic images.
    """
    from archsim.workload.data import calibration_batches, synthetic_batches
    from archsim.workload.efficientvit import build_model

    calib = workload.calibration
    model = build_model(
        workload.model,
        seed=workload.seed,
        checkpoint=getattr(workload, "checkpoint", None),
        resolution=workload.resolution,
    )
    batches = calibration_batches(
        getattr(calib, "source", "synthetic"),
        calib.samples,
        calib.batch_size,
        workload.resolution,
        workload.seed,
    )
    quantized = quantize_model(model, workload.policy, batches)
    meta = graph_meta(workload, quantized.policy.name, workload.batch)
    graph = extract_graph(
        model, quantized, (workload.batch, 3, workload.resolution, workload.resolution), meta
    )
    summary = quant_share_summary(graph)
    if quality_samples > 0:  # what the integer datapath computes, against fp32
        held_out = synthetic_batches(
            quality_samples, quality_samples, workload.resolution, workload.seed + QUALITY_SEED_OFFSET
        )
        candidate = IntegerModel(quantized.folded, graph) if quantized.policy.quantized else quantized
        summary.update(
            compare_outputs(model, candidate, held_out),
            policy=quantized.policy.name,
            computed_by="integer model" if quantized.policy.quantized else "fp32 model, BN folded",
        )
    graph.graph["quant_summary"] = summary
    return Built(graph, model, quantized)


def build_graph(workload, *, quality_samples: int = QUALITY_SAMPLES) -> nx.DiGraph:
    """The graph of :func:`build_workload`."""
    return build_workload(workload, quality_samples=quality_samples).graph
