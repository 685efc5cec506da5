"""Every YAML schema follows one style: one strict model per mapping, a description on every field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archsim.arch.schema import ArchModel
from archsim.configfile import Document, Problem, StrictModel, models_of, validate
from archsim.quant.policy_loader import PolicyFileModel
from archsim.workload.config import WorkloadModel

ROOTS = {"arch": ArchModel, "workload": WorkloadModel, "policy": PolicyFileModel}


@pytest.mark.parametrize("kind", ROOTS)
def test_every_field_of_every_model_has_a_description(kind):
    models = models_of(ROOTS[kind])
    assert len(models) >= 2  # the root and its nested mappings
    for model in models:
        assert issubclass(model, StrictModel), model
        assert model.model_config["extra"] == "forbid" and model.model_config["frozen"], model
        for name, info in model.model_fields.items():
            assert info.description and len(info.description) > 8, (
                f"{model.__name__}.{name} has no description"
            )


def test_arch_schema_covers_every_mapping():
    names = {m.__name__ for m in models_of(ArchModel)}
    assert names == {
        "ArchModel",
        "EnergyEntryModel",
        "EngineModel",
        "ModeModel",
        "BufferModel",
        "DramModel",
        "InterconnectModel",
        "ParamsModel",
        "BaselineModel",
        "DataflowModel",
        "UnrollingModel",
        "WeightLoadModel",
        "MappingModel",
        "MappingOverrideModel",
        "MemoryModel",
    }


def test_problems_render_file_line_field_value_allowed():
    assert (
        Problem(7, "a.b", "must be an integer >= 1", "0").render("f.yaml")
        == "f.yaml:7: a.b: 0: must be an integer >= 1"
    )
    assert Problem(None, "", "file not found").render("f.yaml") == "f.yaml: file not found"
    assert Problem(3, "x", "missing required field").render(None) == "x: missing required field"


def test_pydantic_wording_never_reaches_the_user():
    doc = Document(
        file="w.yaml",
        path=None,
        sha256="",
        data={"model": "b1", "batch": [1], "seed": {"a": 1}},
        lines={("batch",): 2, ("seed",): 3},
    )
    _, problems = validate(WorkloadModel, doc)
    rendered = [p.render("w.yaml") for p in problems]
    assert rendered == [
        "w.yaml:2: batch: [1]: must be an integer >= 1",
        "w.yaml:3: seed: {'a': 1}: must be an integer in [0, 9223372036844775807]",
    ]


def test_bundled_policies_are_read_on_first_use_not_at_import():
    code = (
        "import archsim.quant.policy as p, archsim.quant.policy_loader as l, archsim.workload.config; "
        "assert l._BUNDLED is None; assert 'm2q' in p.POLICIES; assert l._BUNDLED is not None; "
        "import sys; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
