"""EfficientViT B0-B3: timm-compatible names, published sizes, fx tracing, seeding, checkpoints."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.fx
import torch.nn.functional as F

from archsim.workload.efficientvit import (
    BN_REESTIMATE_BATCHES,
    MODEL_CONFIGS,
    MODEL_NAMES,
    CheckpointError,
    LiteMLA,
    build_model,
    count_parameters,
    create_model,
    init_weights,
    mit_to_timm_key,
)

# sha256 over the sorted "key:shape" lines of timm's state_dict, computed with timm 1.0.31
# (timm.models.efficientvit_mit.EfficientVit built with each efficientvit_bN's model_args).
# Our model was compared against that timm too: same keys and shapes, and bit-identical
# outputs with timm's weights loaded, at 224/256/288.
TIMM_KEY_DIGESTS = {
    "efficientvit_b0": (197, "1cbf7da486c3421c8a7364a2933531252a64bf60930926a90b642f299ecc4ccb"),
    "efficientvit_b1": (272, "0db50ea97417be3fe5cd5953bfb86600cd208fc8189dcbfe7dfaa1f13a13338d"),
    "efficientvit_b2": (365, "679d2bed723329987558d7134e3a5d4fe7724019db3d677116dd595bf05ed626"),
    "efficientvit_b3": (514, "ce6ccfdd7bf5da00773c702c4b594f4ae8235615e43ff4d57401dbd014650a7e"),
}

# Exact timm key names (timm/models/efficientvit_mit.py) with their B1 shapes.
B1_TIMM_KEYS = {
    "stem.in_conv.conv.weight": (16, 3, 3, 3),
    "stem.in_conv.norm.running_var": (16,),
    "stem.res0.main.depth_conv.conv.weight": (16, 1, 3, 3),
    "stem.res0.main.point_conv.norm.weight": (16,),
    "stages.0.blocks.0.main.inverted_conv.conv.weight": (64, 16, 1, 1),
    "stages.0.blocks.1.main.depth_conv.conv.weight": (128, 1, 3, 3),
    "stages.1.blocks.2.main.point_conv.conv.weight": (64, 256, 1, 1),
    "stages.2.blocks.0.main.inverted_conv.conv.bias": (256,),
    "stages.2.blocks.1.context_module.main.qkv.conv.weight": (384, 128, 1, 1),
    "stages.2.blocks.1.context_module.main.aggreg.0.0.weight": (384, 1, 5, 5),
    "stages.2.blocks.1.context_module.main.aggreg.0.1.weight": (384, 16, 1, 1),
    "stages.2.blocks.1.context_module.main.proj.conv.weight": (128, 256, 1, 1),
    "stages.2.blocks.1.context_module.main.proj.norm.num_batches_tracked": (),
    "stages.3.blocks.4.local_module.main.depth_conv.conv.bias": (1024,),
    "stages.3.blocks.4.local_module.main.point_conv.norm.running_mean": (256,),
    "head.in_conv.conv.weight": (1536, 256, 1, 1),
    "head.classifier.0.weight": (1600, 1536),
    "head.classifier.1.weight": (1600,),
    "head.classifier.1.bias": (1600,),
    "head.classifier.4.weight": (1000, 1600),
    "head.classifier.4.bias": (1000,),
}


@pytest.fixture(scope="module")
def b0():
    return build_model("efficientvit_b0", seed=0)


@pytest.fixture(scope="module")
def b1():
    return build_model("efficientvit_b1", seed=0)


def _key_digest(model: torch.nn.Module) -> tuple[int, str]:
    sd = model.state_dict()
    lines = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(sd.items()))
    return len(sd), hashlib.sha256(lines.encode()).hexdigest()


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_count_matches_published(name):
    params = count_parameters(create_model(name))
    published = MODEL_CONFIGS[name].published_params_m * 1e6
    assert abs(params - published) / published < 0.02, (name, params)


def test_b1_has_timm_key_names_and_shapes():
    sd = create_model("efficientvit_b1").state_dict()
    for key, shape in B1_TIMM_KEYS.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    # timm's Dropout slot is parameterless: no classifier.2/.3 tensors, and no stray dropout/pre_norm modules
    assert not any(k.startswith(("head.classifier.2", "head.classifier.3")) for k in sd)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_keys_and_shapes_equal_timm(name):
    assert _key_digest(create_model(name)) == TIMM_KEY_DIGESTS[name]


def test_against_timm_when_installed():
    timm_mit = pytest.importorskip("timm.models.efficientvit_mit")
    cfg = MODEL_CONFIGS["efficientvit_b0"]
    ref = timm_mit.EfficientVit(
        widths=cfg.widths, depths=cfg.depths, head_dim=cfg.head_dim, head_widths=cfg.head_widths
    ).eval()
    ours = create_model("b0").eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_model_name_aliases_and_unknown_name():
    assert create_model("b2").config.name == "efficientvit_b2"
    assert create_model("EfficientViT-B0").config.name == "efficientvit_b0"
    with pytest.raises(KeyError, match="efficientvit_b0"):
        create_model("efficientvit_b9")


def test_vit_stage_layout():
    m = create_model("b1")
    first_vit = m.stages[2].blocks[0]
    assert first_vit.shortcut is None  # stride-2 downsample block has no residual
    assert first_vit.main.inverted_conv.conv.bias is not None  # fewer_norm: bias, no BN
    assert isinstance(first_vit.main.inverted_conv.norm, torch.nn.Identity)
    assert isinstance(m.stages[0].blocks[1].main.inverted_conv.norm, torch.nn.BatchNorm2d)
    mla = m.stages[3].blocks[1].context_module.main
    assert (mla.dim, mla.heads) == (16, 16)  # 256 channels / head dim 16
    assert mla.aggreg[0][1].groups == 3 * mla.heads
    assert len(m.stages[2].blocks) == 1 + 3 and len(m.stages[0].blocks) == 2  # timm depth counting


# ----------------------------------------------------------------------------- LiteMLA math


def test_litemla_matches_direct_formula():
    """Per-head reference: out_h = relu(q) (relu(k)^T [v|1]) / (relu(q) relu(k)^T 1 + eps)."""
    torch.manual_seed(0)
    mla = LiteMLA(32, 32, dim=8).eval()
    with torch.no_grad():
        for p in mla.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(2, 32, 6, 4)
    with torch.no_grad():
        got = mla(x)
        qkv = mla.qkv(x)
        ms = torch.cat([qkv, mla.aggreg[0](qkv)], dim=1)  # (B, 2*heads*3*dim, H, W)
        B, C, H, W = ms.shape
        heads = C // (3 * mla.dim)
        outs = []
        for h in range(heads):
            blk = ms[:, h * 3 * mla.dim : (h + 1) * 3 * mla.dim].reshape(B, 3 * mla.dim, H * W)
            q, k, v = (
                blk[:, i * mla.dim : (i + 1) * mla.dim].transpose(1, 2) for i in range(3)
            )  # (B, N, dim)
            q, k = q.clamp(min=0), k.clamp(min=0)
            num = q @ (k.transpose(1, 2) @ v)
            den = q @ k.sum(dim=1, keepdim=True).transpose(1, 2)
            outs.append((num / (den + mla.eps)).transpose(1, 2).reshape(B, mla.dim, H, W))
        want = mla.proj(torch.cat(outs, dim=1))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- fx tracing


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fx_trace_equals_eager(name):
    model = create_model(name, seed=1).eval()
    gm = torch.fx.symbolic_trace(model)
    ops = {n.target for n in gm.graph.nodes if n.op == "call_function"}
    assert torch.matmul in ops and F.pad in ops  # LiteMLA traced through, not a leaf
    res = 224 if name in ("efficientvit_b0", "efficientvit_b1") else 128
    x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(gm(x), model(x))


def test_traced_graph_is_resolution_generic(b1):
    gm = torch.fx.symbolic_trace(b1)
    for res in (256, 288):
        x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(res))
        with torch.no_grad():
            assert torch.equal(gm(x), b1(x))


# ----------------------------------------------------------------------------- build_model


@pytest.mark.parametrize("res", [224, 256, 288])
def test_resolutions_run(b1, res):
    x = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = b1(x)
    assert y.shape == (2, 1000) and torch.isfinite(y).all()


def test_build_model_is_eval_and_activations_have_realistic_scale(b0):
    assert not b0.training
    bns = [m for m in b0.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(int(m.num_batches_tracked) == BN_REESTIMATE_BATCHES for m in bns)
    assert not all(torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in bns)
    feats = {}
    b0.stages.register_forward_hook(lambda mod, i, o: feats.__setitem__("stages", o))
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        y = b0(x)
    std = feats["stages"].std().item()
    assert 0.3 < std < 30, std  # neither vanished nor exploded after 4 stages
    assert torch.isfinite(y).all() and y.std() > 1e-3


def test_same_seed_bit_identical_other_seed_differs(b0):
    rng_before = torch.get_rng_state()
    again = build_model("b0", seed=0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    sd0, sd1 = b0.state_dict(), again.state_dict()
    assert sd0.keys() == sd1.keys()
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    other = build_model("b0", seed=1).state_dict()
    assert not torch.equal(sd0["stem.in_conv.conv.weight"], other["stem.in_conv.conv.weight"])


def test_init_follows_mit_han_lab_init_modules():
    m = create_model("b0")
    init_weights(m, seed=0)
    w = m.head.in_conv.conv.weight  # followed by BN: init_modules' trunc_normal std 0.02
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    assert abs(m.head.classifier[0].weight.std().item() - 0.02) < 0.001
    assert torch.count_nonzero(m.stages[2].blocks[0].main.inverted_conv.conv.bias) == 0
    assert torch.all(m.head.classifier[1].weight == 1) and torch.all(m.head.classifier[1].bias == 0)
    assert torch.all(m.stem.in_conv.norm.weight == 1)
    # no norm after it: variance-preserving std 1/sqrt(fan_in) (documented deviation)
    mla = m.stages[3].blocks[1].context_module.main
    for conv, fan_in in ((mla.qkv.conv, 128), (mla.aggreg[0][0], 25), (mla.aggreg[0][1], 16)):
        assert abs(conv.weight.std().item() * fan_in**0.5 - 1) < 0.1, conv
    pure = create_model("b0")
    init_weights(pure, seed=0, fan_in_unnormalised=False)
    assert abs(pure.stages[3].blocks[1].context_module.main.qkv.conv.weight.std().item() - 0.02) < 0.002


def test_litemla_branches_share_a_quantization_scale_sensibly(b0):
    """The qkv map and its aggregated copy are concatenated into one tensor (one per-tensor scale):
    their magnitudes must be comparable, or 8-bit quantization zeroes the smaller branch."""
    outs = {}
    mla = b0.stages[3].blocks[1].context_module.main
    h1 = mla.qkv.register_forward_hook(lambda mod, i, o: outs.__setitem__("qkv", o))
    h2 = mla.aggreg[0].register_forward_hook(lambda mod, i, o: outs.__setitem__("agg", o))
    with torch.no_grad():
        b0(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3)))
    h1.remove()
    h2.remove()
    ratio = outs["qkv"].std() / outs["agg"].std()
    assert 0.25 < ratio < 4, ratio
    both = torch.cat([outs["qkv"], outs["agg"]], dim=1)
    scale = both.abs().max() / 127
    assert ((outs["agg"] / scale).round() != 0).float().mean() > 0.8


def test_seeded_create_model_initialises_every_tensor():
    """create_model(seed=) materialises from the meta device: init_weights must write every tensor."""
    m = create_model("b0", seed=0)
    covered = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d, torch.nn.LayerNorm)
    for mod_name, mod in m.named_modules():
        if list(mod.parameters(recurse=False)) or list(mod.buffers(recurse=False)):
            assert isinstance(mod, covered), mod_name
    sd = m.state_dict()
    assert all(torch.isfinite(v.float()).all() for v in sd.values())
    again = create_model("b0", seed=0).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in sd.items())


def test_build_model_argument_errors():
    with pytest.raises(ValueError, match="resolution"):
        build_model("b0", resolution=250)
    with pytest.raises(ValueError, match="seed"):
        build_model("b0", seed=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("b0", num_classes=0)


def test_num_classes():
    m = create_model("b0", num_classes=10)
    assert m.head.classifier[4].weight.shape == (10, 1280)


# ----------------------------------------------------------------------------- checkpoints


def _logits(model, seed=5):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


def test_checkpoint_round_trip(tmp_path):
    src = build_model("b0", seed=3)
    path = tmp_path / "b0.pth"
    torch.save(src.state_dict(), path)
    loaded = build_model("b0", checkpoint=path, seed=99)  # seed is ignored with a checkpoint
    assert not loaded.training
    assert torch.equal(_logits(loaded), _logits(src))
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in src.state_dict().items())


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix", "no_batch_counters"])
def test_checkpoint_container_forms(tmp_path, b0, wrap):
    sd = b0.state_dict()
    if wrap == "module_prefix":
        obj = {f"module.{k}": v for k, v in sd.items()}
    elif wrap == "no_batch_counters":
        obj = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    else:
        obj = {wrap: sd, "epoch": torch.tensor(3)}
    path = tmp_path / f"{wrap}.pt"
    torch.save(obj, path)
    assert torch.equal(_logits(build_model("b0", checkpoint=str(path))), _logits(b0))


def test_checkpoint_missing_and_unexpected_keys(tmp_path, b0):
    sd = dict(b0.state_dict())
    del sd["head.classifier.4.weight"]
    sd["head.extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken_b0.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as exc:
        build_model("b0", checkpoint=path)
    msg = str(exc.value)
    assert "broken_b0.pth" in msg and "efficientvit_b0" in msg
    assert "1 missing key(s): head.classifier.4.weight" in msg
    assert "1 unexpected key(s): head.extra.weight" in msg


def test_checkpoint_of_another_model(tmp_path, b0):
    path = tmp_path / "b0.pth"
    torch.save(b0.state_dict(), path)
    with pytest.raises(CheckpointError) as exc:
        build_model("b1", checkpoint=path)
    msg = str(exc.value)
    assert "b0.pth" in msg and "missing key(s)" in msg and "shape mismatch(es)" in msg
    assert "stem.in_conv.conv.weight: file (8, 3, 3, 3) vs model (16, 3, 3, 3)" in msg
    assert "more)" in msg  # long lists are cut to the first few


def test_checkpoint_corrupted_file(tmp_path, b0):
    good = tmp_path / "good.pth"
    torch.save(b0.state_dict(), good)
    bad = tmp_path / "corrupted.pth"
    bad.write_bytes(good.read_bytes()[:5000])  # truncated archive
    with pytest.raises(CheckpointError, match=r"corrupted\.pth.*cannot be read"):
        build_model("b0", checkpoint=bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        build_model("b0", checkpoint=junk)


def test_checkpoint_not_a_state_dict_or_missing(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="expected a state_dict"):
        build_model("b0", checkpoint=path)
    with pytest.raises(CheckpointError, match="no such file"):
        build_model("b0", checkpoint=tmp_path / "absent.pth")
    assert issubclass(CheckpointError, ValueError)  # the CLI reports ValueErrors without traceback


class _NotATensor:
    """A picklable class that weights_only loading must refuse to instantiate."""


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": _NotATensor()}}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        build_model("b0", checkpoint=path)


# mit-han-lab EfficientViTCls names (efficientvit/models/efficientvit/{backbone,cls}.py, models/nn/ops.py)
MIT_TO_TIMM = {
    "backbone.input_stem.op_list.0.conv.weight": "stem.in_conv.conv.weight",
    "backbone.input_stem.op_list.1.main.depth_conv.norm.running_var": (
        "stem.res0.main.depth_conv.norm.running_var"
    ),
    "backbone.stages.0.op_list.0.main.inverted_conv.conv.weight": (
        "stages.0.blocks.0.main.inverted_conv.conv.weight"
    ),
    "backbone.stages.2.op_list.1.context_module.main.aggreg.0.1.weight": (
        "stages.2.blocks.1.context_module.main.aggreg.0.1.weight"
    ),
    "head.op_list.0.norm.bias": "head.in_conv.norm.bias",
    "head.op_list.2.linear.weight": "head.classifier.0.weight",
    "head.op_list.2.norm.weight": "head.classifier.1.weight",
    "head.op_list.3.linear.bias": "head.classifier.4.bias",
}


def test_mit_han_lab_key_names():
    for mit, timm in MIT_TO_TIMM.items():
        assert mit_to_timm_key(mit) == timm
    assert mit_to_timm_key("stem.in_conv.conv.weight") == "stem.in_conv.conv.weight"


def test_mit_han_lab_checkpoint_loads(tmp_path, b0):
    timm_to_mit = {}
    for k in b0.state_dict():
        mit = (
            k.replace("stem.in_conv.", "backbone.input_stem.op_list.0.")
            .replace("stem.res0.", "backbone.input_stem.op_list.1.")
            .replace("head.in_conv.", "head.op_list.0.")
            .replace("head.classifier.0.", "head.op_list.2.linear.")
            .replace("head.classifier.1.", "head.op_list.2.norm.")
            .replace("head.classifier.4.", "head.op_list.3.linear.")
        )
        if mit.startswith("stages."):
            _, s, _, j, rest = mit.split(".", 4)
            mit = f"backbone.stages.{s}.op_list.{j}.{rest}"
        timm_to_mit[k] = mit
    path = tmp_path / "b0-r224.pt"
    torch.save({"state_dict": {timm_to_mit[k]: v for k, v in b0.state_dict().items()}}, path)
    assert torch.equal(_logits(build_model("b0", checkpoint=path)), _logits(b0))
