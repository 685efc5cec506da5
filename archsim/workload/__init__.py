"""Workloads: EfficientViT B0-B3 models, workload YAMLs, checkpoints and calibration data.

Public API (imported lazily, so ``archsim.workload.config`` and ``archsim.workload.zoo`` load
without torch):

- ``build_model(name, *, seed=0, checkpoint=None, num_classes=1000, resolution=224)``
  (:mod:`archsim.workload.efficientvit`)
- ``load_workload(name_or_path, **overrides)``, ``list_workloads()``, ``Workload``
  (:mod:`archsim.workload.config`)
- ``synthetic_batches(n_samples, batch_size, resolution, seed)`` (:mod:`archsim.workload.data`)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "build_model": "efficientvit",
    "create_model": "efficientvit",
    "load_checkpoint": "efficientvit",
    "CheckpointError": "efficientvit",
    "EfficientVit": "efficientvit",
    "count_parameters": "efficientvit",
    "load_workload": "config",
    "list_workloads": "config",
    "Workload": "config",
    "Calibration": "config",
    "WorkloadError": "config",
    "synthetic_batches": "data",
    "calibration_batches": "data",
    "MODEL_NAMES": "zoo",
    "MODEL_CONFIGS": "zoo",
    "canonical_model_name": "zoo",
}

__all__ = list(_EXPORTS)  # noqa: PLE0605 (names listed in _EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'archsim.workload' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
