"""Ways forward for a workload an architecture cannot run: which bundled policies it can run.

Building a policy's graph costs seconds (model, calibration, extraction), so the policies are
not each built and tried. Instead the graph that failed is a *template*: a bundled quantized
policy with the same activation side (quantized, ``act_bits``, ``wide_attention``,
``classifier_output_wide``) gives every layer the same activation bits, so its needs are the
template's with each weighted layer's needs re-derived from the candidate's rule for the
layer's role. An unquantized (fp32) candidate has every layer of the template in 32-bit float.
A quantized candidate of another activation side is built once (``build``, when given), and its
graph is the template for the rest of its side.

The prediction errs on the safe side: a rule with APoT filters needs both a uniform and an APoT
mode (which filters choose APoT depends on the weights), so a policy named here does run.
tests/unit/test_advice.py checks the predictions against real graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import networkx as nx

from archsim.arch.coverage import check_supports
from archsim.arch.spec import ArchSpec
from archsim.graph.ir import FLOAT_BITS, Scheme, layers
from archsim.graph.opkinds import Need, layer_needs
from archsim.quant.policy import POLICIES, QuantPolicy, WeightRule


def _activation_side(policy: QuantPolicy) -> tuple:
    return policy.quantized, policy.act_bits, policy.wide_attention, policy.classifier_output_wide


def _role(layer) -> str | None:
    return None if layer.role is None else layer.role.value


def _rule_needs(layer, rule: WeightRule) -> list[Need]:
    kind, act_bits = layer.kind, layer.act_bits
    scheme = Scheme.UNIFORM if max(act_bits, rule.bits) < FLOAT_BITS else Scheme.FLOAT
    needs: list[Need] = [Need(kind, rule.bits, act_bits, scheme)]
    if rule.has_apot:
        needs.append(Need(kind, rule.apot_bits, act_bits, Scheme.APOT))
    return needs


def _float_needs(template: nx.DiGraph) -> list[Need]:
    """An fp32 graph of the same model: every layer in 32-bit float."""
    return list(
        dict.fromkeys(
            Need(layer.kind, FLOAT_BITS if layer.weight_bits is not None else None, FLOAT_BITS, Scheme.FLOAT)
            for layer in layers(template)
        )
    )


def predicted_needs(
    template: nx.DiGraph, template_policy: QuantPolicy, candidate: QuantPolicy
) -> list[Need] | None:
    """The needs ``candidate`` would give the template's model (a superset), or None if unknown."""
    if not candidate.quantized:
        return _float_needs(template)
    if _activation_side(candidate) != _activation_side(template_policy):
        return None
    needs: list[Need] = []
    for layer in layers(template):
        if layer.weight_bits is None:
            needs += layer_needs(layer)
            continue
        role = _role(layer)
        if role is None:
            return None
        needs += _rule_needs(layer, candidate.rule(role))
    return list(dict.fromkeys(needs))


def runnable_policies(
    spec: ArchSpec,
    template: nx.DiGraph,
    template_policy: QuantPolicy,
    candidates: Iterable[QuantPolicy] | None = None,
    build: Callable[[str], nx.DiGraph] | None = None,
) -> list[str]:
    """Names of the policies (default: the bundled ones) predicted to run on ``spec``, in listing order.

    ``build(name)``: the graph of the same workload under policy ``name``; called at most once per
    activation side the template does not cover (never for the bundled policies when the template
    is quantized with 8-bit activations).
    """
    templates = {_activation_side(template_policy): (template, template_policy)}
    out = []
    for policy in candidates if candidates is not None else POLICIES.values():
        if policy.name == template_policy.name:
            continue
        side = _activation_side(policy)
        if policy.quantized and side not in templates and build is not None:
            templates[side] = (build(policy.name), policy)
        graph, base = templates.get(side, (template, template_policy))
        needs = predicted_needs(graph, base, policy)
        if needs is not None and not check_supports(spec, needs):
            out.append(policy.name)
    return out
