"""The torch front end: torch.fx tracing into layer groups, extraction of the quantized graph.

With archsim.workload and archsim.quant, the only packages that import torch. Stages, in order:
``fx_groups`` (trace and group nodes into layers; quantization reads it), then, after
quantization, ``scale_maps`` / ``integer_params`` / ``access`` / ``extract`` (the graph) and
``build`` (workload -> graph). Everything after the graph (archsim.graph, archsim.functional,
archsim.sim, archsim.energy, archsim.report) runs without torch.
"""
