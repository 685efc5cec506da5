"""Quantization quality report: what each layer was quantized to and what it costs in accuracy.

``quality_report`` gathers, for one :class:`~archsim.quant.quantize.QuantizedModel`:

* per weighted layer: module kind, role, bit-widths, how many filters took each scheme, the
  APoT fraction and the weight SQNR (folded fp32 weights vs the dequantized integers);
* per activation point: the calibrated range, scale, zero point and bits;
* model level against the fp32 model on the given batches: output SQNR, mean cosine
  similarity, top-1 agreement; with labelled batches, the real top-1 of both models. These
  are the integer model's numbers (the graph run by its integer rules) when one is given;
* per layer, the integer model's output SQNR against fp32 (where error enters and builds up)
  and how its codes compare with the float fake-quant model's on the same inputs.

SQNR is ``10 log10(sum x^2 / sum (x - x_q)^2)`` in dB; an exact quantization (no error)
is reported as None (JSON null) rather than infinity, which JSON cannot hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from archsim.quant.quantize import QuantizedModel, compare_outputs


def sqnr_db(signal_energy: float, noise_energy: float) -> float | None:
    """10 log10(signal / noise) in dB; None when the noise is zero (exact)."""
    if noise_energy == 0:
        return None
    if signal_energy == 0:
        return -math.inf if noise_energy > 0 else None
    return 10.0 * math.log10(signal_energy / noise_energy)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _module_kind(module: nn.Module) -> str:
    """Short description of a weighted module, e.g. 'Conv2d 3x3 g=64' or 'Linear'."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return f"Conv2d {kh}x{kw}" + (f" g={module.groups}" if module.groups > 1 else "")
    return type(module).__name__


def _quantized_reference(quantized: QuantizedModel, name: str, weight: np.ndarray) -> np.ndarray:
    """The float weight that was quantized: channel migration (Trio-ViT) multiplies a depthwise
    filter c by s_c before quantization (its input is divided by s_c), so compare against that."""
    s = quantized.layer_attrs.get(name, {}).get("input_channel_divisor")
    if s is None:
        return weight
    return weight * np.asarray(s, dtype=np.float64).reshape((-1,) + (1,) * (weight.ndim - 1))


def layer_rows(quantized: QuantizedModel) -> list[dict]:
    """One row per weighted layer (in model order): bits, scheme counts, APoT fraction, weight SQNR."""
    rows = []
    for name, wq in quantized.weights.items():
        module = quantized.folded.get_submodule(wq.module_path)
        weight = _quantized_reference(quantized, name, module.weight.detach().to(torch.float64).numpy())
        error = weight - wq.dequantized()
        n_apot = int(wq.apot_mask.sum())
        filters = int(wq.apot_mask.size)
        rows.append(
            {
                "name": name,
                "kind": _module_kind(module),
                "role": wq.role,
                "bits": int(wq.bits),
                "apot_bits": None if wq.apot_bits is None else int(wq.apot_bits),
                "filters": filters,
                "schemes": {"uniform": filters - n_apot, "apot": n_apot},
                "apot_fraction": n_apot / filters if filters else 0.0,
                "weight_sqnr_db": sqnr_db(float(np.sum(weight**2)), float(np.sum(error**2))),
                "adaround": wq.adaround,  # sampled output MSE, nearest vs learned rounding (None: nearest)
            }
        )
    return rows


def activation_rows(quantized: QuantizedModel) -> list[dict]:
    """One row per 8-bit activation point: calibrated (min, max), scale, zero point, bits."""
    return [
        {
            "name": key,
            "bits": int(a.bits),
            "min": float(a.lo),
            "max": float(a.hi),
            "scale": float(a.scale),
            "zero_point": int(a.zero_point),
            "symmetric": bool(a.symmetric),
        }
        for key, a in quantized.activations.items()
    ]


def top1_accuracy(
    model: nn.Module, labelled: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[float, int]:
    """(fraction of correct top-1 predictions, number of samples) of ``model`` on (images, labels)."""
    correct = total = 0
    with torch.no_grad():
        for images, labels in labelled:
            correct += int((model(images).argmax(-1) == labels).sum())
            total += int(labels.numel())
    if total == 0:
        raise ValueError("top-1 accuracy needs at least one labelled image")
    return correct / total, total


def layer_output_rows(quantized: QuantizedModel, integer_model, image: torch.Tensor) -> list[dict]:
    """Per layer (model order): the integer model's output against fp32,
    and its codes against the fake-quant model.

    ``output_sqnr_db``: integer model and float model each run freely on ``image`` (where the
    error enters and how it builds up); ``max_diff`` / ``identical``: each 8-bit layer on the
    fake-quant model's inputs (None for wide layers).
    """
    from archsim.quant.integer_model import layer_agreement, layer_output_sqnr

    sqnr = layer_output_sqnr(integer_model, image)
    agreement = layer_agreement(quantized, integer_model, image)
    rows = []
    for name in integer_model.graph.graph.get("order", list(integer_model.graph.nodes)):
        layer = integer_model.layers[name]
        a = agreement.get(name, {})
        rows.append(
            {
                "name": name,
                "kind": layer.kind.value,
                "bits": int(layer.out_bits),
                "output_sqnr_db": _finite_or_none(sqnr[name]) if sqnr.get(name) is not None else None,
                "max_diff": a.get("max_diff"),
                "identical": a.get("identical"),
                "elements": a.get("elements"),
            }
        )
    return rows


def quality_report(
    model: nn.Module,
    quantized: QuantizedModel,
    fp32_batches: Iterable[torch.Tensor],
    *,
    eval_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    integer_model=None,
) -> dict:
    """The quality report of ``quantized`` (see the module docstring); JSON-ready (no NaN/inf).

    With ``integer_model`` (:class:`~archsim.quant.integer_model.IntegerModel` of the quantized
    graph) the model-level numbers are the integer datapath's, and ``layer_outputs`` gives every
    layer's output SQNR against fp32 and how its codes compare with the fake-quant model, on the
    first comparison image (:func:`layer_output_rows`); without it
    they are the fake-quant model's (float arithmetic, see docs/quantization.md).
    """
    model = model.eval()
    fp32_batches = list(fp32_batches)
    candidate = integer_model if integer_model is not None else quantized
    cmp = compare_outputs(model, candidate, fp32_batches)
    summary = {
        "policy": quantized.policy.name,
        "computed_by": "integer model"
        if integer_model is not None
        else ("fake-quant model" if quantized.policy.quantized else "fp32 model, BN folded"),
        "samples": cmp["samples"],
        "output_sqnr_db": _finite_or_none(cmp["sqnr_db"]),
        "cosine": cmp["cosine"],
        "top1_agreement": cmp["top1_agreement"],
        "apot_share": quantized.apot_share(),
    }
    if eval_batches is not None:
        eval_batches = list(eval_batches)
        fp32_top1, n = top1_accuracy(model, eval_batches)
        quant_top1, _ = top1_accuracy(candidate, eval_batches)
        summary["eval"] = {"samples": n, "top1_fp32": fp32_top1, "top1_quantized": quant_top1}
    report = {"model": summary, "layers": layer_rows(quantized), "activations": activation_rows(quantized)}
    if integer_model is not None and fp32_batches:
        report["layer_outputs"] = layer_output_rows(quantized, integer_model, fp32_batches[0][:1])
    return report


def _fmt(x: float | None, spec: str) -> str:
    return "exact" if x is None else format(x, spec)


def _table(headers: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Plain-text table; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_report(report: dict) -> str:
    """A readable text version of :func:`quality_report`: model-level numbers, then the tables."""
    m = report["model"]
    lines = [
        f"policy {m['policy']}: {m.get('computed_by', 'quantized model')} output vs fp32 "
        f"on {m['samples']} image(s)",
        f"  output SQNR        {_fmt(m['output_sqnr_db'], '.2f')} dB",
        f"  cosine similarity  {m['cosine']:.4f} (mean over images)",
        f"  top-1 agreement    {100 * m['top1_agreement']:.1f} %",
        f"  APoT share         {100 * m['apot_share']:.1f} % of mixed-scheme filters",
    ]
    if "eval" in m:
        e = m["eval"]
        lines.append(
            f"  top-1 accuracy     fp32 {100 * e['top1_fp32']:.1f} %, quantized "
            f"{100 * e['top1_quantized']:.1f} % on {e['samples']} labelled image(s)"
        )
    rounded = [r["adaround"] for r in report["layers"] if r.get("adaround")]
    if rounded:
        ratios = sorted(a["mse_adaround"] / a["mse_nearest"] for a in rounded if a["mse_nearest"] > 0)
        better = sum(a["mse_adaround"] < a["mse_nearest"] for a in rounded)
        lines.append(
            f"  AdaRound           layer output MSE lower on {better} of {len(rounded)} layers, "
            f"median ratio {ratios[len(ratios) // 2]:.3f} (sampled calibration rows)"
        )
    outputs = report.get("layer_outputs")
    if outputs:
        compared = [r for r in outputs if r["max_diff"] is not None]
        worst = min(compared, key=lambda r: r["identical"])
        lines.append(
            f"  integer vs fake-quant model, each layer on the same inputs: max "
            f"{max(r['max_diff'] for r in compared)} code(s), identical codes >= "
            f"{100 * worst['identical']:.1f} % ({worst['name']}) over {len(compared)} layers"
        )
    layers = report["layers"]
    if layers:
        lines += ["", "weights:"]
        lines += _table(
            [
                "layer",
                "kind",
                "role",
                "bits",
                "APoT bits",
                "filters",
                "uniform",
                "APoT",
                "APoT [%]",
                "weight SQNR [dB]",
            ],
            [
                [
                    r["name"],
                    r["kind"],
                    r["role"],
                    str(r["bits"]),
                    "-" if r["apot_bits"] is None else str(r["apot_bits"]),
                    str(r["filters"]),
                    str(r["schemes"]["uniform"]),
                    str(r["schemes"]["apot"]),
                    f"{100 * r['apot_fraction']:.1f}",
                    _fmt(r["weight_sqnr_db"], ".2f"),
                ]
                for r in layers
            ],
            left=3,
        )
    if outputs:
        lines += [
            "",
            "layer outputs (integer model vs fp32, first image; "
            "codes vs the fake-quant model on its inputs):",
        ]
        lines += _table(
            ["layer", "kind", "out bits", "output SQNR [dB]", "max diff", "identical [%]"],
            [
                [
                    r["name"],
                    r["kind"],
                    str(r["bits"]),
                    _fmt(r["output_sqnr_db"], ".2f"),
                    "-" if r["max_diff"] is None else str(r["max_diff"]),
                    "-" if r["identical"] is None else f"{100 * r['identical']:.1f}",
                ]
                for r in outputs
            ],
            left=2,
        )
    acts = report["activations"]
    if acts:
        lines += ["", "activations (per tensor):"]
        lines += _table(
            ["point", "bits", "min", "max", "scale", "zero point"],
            [
                [
                    r["name"],
                    str(r["bits"]),
                    f"{r['min']:.4g}",
                    f"{r['max']:.4g}",
                    f"{r['scale']:.4g}",
                    str(r["zero_point"]),
                ]
                for r in acts
            ],
        )
    return "\n".join(lines)
