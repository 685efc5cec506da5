"""The IR, the simulator and the executor run where torch cannot be imported: a saved graph simulates
with values to the same logits as the run that saved it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from torchless import BLOCK_TORCH
from toy_fixtures import toy_build

from archsim.arch.loader import load_arch
from archsim.graph.io import save_graph
from archsim.sim import simulate

M2VIT = Path(__file__).resolve().parents[2] / "arch_configs" / "m2vit.yaml"

RUN = textwrap.dedent("""
    import json, sys
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch imported although it is blocked")
    from archsim.arch.loader import load_arch
    from archsim.graph.io import load_graph
    from archsim.sim import simulate

    result = simulate(load_graph(sys.argv[1]), load_arch(sys.argv[2]))
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"
    print(json.dumps({"functional": result.functional, "latency_cycles": result.latency_cycles}))
""")


def test_saved_graph_simulates_with_values_without_torch(tmp_path):
    _, graph = toy_build("m2q")
    spec = load_arch(M2VIT)
    before = simulate(graph, spec)
    path = save_graph(graph, tmp_path / "toy.archsim-graph")
    script = tmp_path / "run.py"
    script.write_text(BLOCK_TORCH + RUN)
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(M2VIT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout)
    assert after["functional"]["outputs"] == before.functional["outputs"]  # the same logits
    assert after["functional"]["layers_sha256"] == before.functional["layers_sha256"]
    assert after["latency_cycles"] == before.latency_cycles
