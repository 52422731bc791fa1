"""Frozen linears of the training forward on packed weights (reasonkit/engine/frozen_linear.py)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from reasonkit.engine import hf_linear  # noqa: E402
from reasonkit.engine import frozen_linear  # noqa: E402

needs_packing = pytest.mark.skipif(not hf_linear.can_pack(torch.float32),
                                   reason="this PyTorch build or CPU has no oneDNN packed fp32 matmul")


def _net(seed=0):
    torch.manual_seed(seed)
    frozen = torch.nn.Linear(16, 48)
    frozen.requires_grad_(False)
    head = torch.nn.Linear(48, 40, bias=False)
    head.requires_grad_(False)
    trained = torch.nn.Linear(48, 48)  # a trained layer between two frozen ones
    return torch.nn.Sequential(frozen, torch.nn.Tanh(), trained, torch.nn.Tanh(), head)


def _grads(model, x):
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad(set_to_none=True)
    return out.detach(), x.grad, grads


@needs_packing
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_outputs_and_gradients_equal_f_linear(monkeypatch, dtype):
    monkeypatch.setattr(frozen_linear, "_calibrate", lambda weights, dtype: True)
    monkeypatch.setattr(frozen_linear, "_CHOICE", {})
    if not hf_linear.can_pack(dtype):
        pytest.skip(f"no oneDNN packed matmul for {dtype} here")
    model = _net().to(dtype)
    x = torch.randn(4, 20, 16, dtype=dtype)  # 80 rows: more than the rollout's few-row limit
    ref = _grads(model, x)
    calls = []
    real = frozen_linear._PackedFrozenLinear.apply
    monkeypatch.setattr(frozen_linear._PackedFrozenLinear, "apply", lambda *a: calls.append(1) or real(*a))
    with frozen_linear.packed_frozen_linears(model):
        got = _grads(model, x)
    assert len(calls) == 2  # the two frozen layers, not the trained one
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    for a, b in zip([ref[0], ref[1], *ref[2]], [got[0], got[1], *got[2]]):
        assert torch.allclose(a.float(), b.float(), atol=tol, rtol=tol), (a - b).abs().max()
    assert all("forward" not in m.__dict__ for m in model)  # restored


@needs_packing
def test_a_trained_bias_of_a_frozen_weight_gets_its_gradient(monkeypatch):
    monkeypatch.setattr(frozen_linear, "_calibrate", lambda weights, dtype: True)
    monkeypatch.setattr(frozen_linear, "_CHOICE", {})
    layer = torch.nn.Linear(8, 6)
    layer.weight.requires_grad_(False)
    x = torch.randn(40, 8)
    layer(x).pow(2).sum().backward()
    expected = layer.bias.grad.clone()
    layer.bias.grad = None
    with frozen_linear.packed_frozen_linears(layer):
        layer(x).pow(2).sum().backward()
    assert torch.allclose(layer.bias.grad, expected, atol=1e-4)


def test_few_rows_and_trained_weights_stay_on_f_linear(monkeypatch):
    monkeypatch.setattr(frozen_linear, "_calibrate", lambda weights, dtype: True)
    monkeypatch.setattr(frozen_linear, "_CHOICE", {})
    calls = []
    monkeypatch.setattr(frozen_linear._PackedFrozenLinear, "apply", lambda *a: calls.append(1))
    model = _net()
    with frozen_linear.packed_frozen_linears(model):
        model(torch.randn(hf_linear.MAX_ROWS, 16))  # rollout-sized: not this module's
        assert "forward" not in model[2].__dict__  # the trained layer is never swapped
    assert calls == []
    with frozen_linear.packed_frozen_linears(model, enabled=False):
        assert all("forward" not in m.__dict__ for m in model)


def test_not_offered_when_the_copies_do_not_fit(monkeypatch):
    asked = []
    monkeypatch.setattr(frozen_linear, "_calibrate", lambda weights, dtype: asked.append(1) or True)
    monkeypatch.setattr(frozen_linear, "_CHOICE", {})
    model = _net()
    frozen_bytes = 4 * (16 * 48 + 48 * 40)
    monkeypatch.setattr(hf_linear, "memory_bytes", lambda: 8 * 2 * frozen_bytes - 1)  # two copies > 1/8
    with frozen_linear.packed_frozen_linears(model):
        assert all("forward" not in m.__dict__ for m in model)
    assert asked == []


@needs_packing
@pytest.mark.parametrize("fast", [True, False])
def test_calibration_picks_the_faster_way(monkeypatch, fast):
    import time as _time

    def slowed(fn):
        def run(*a):
            _time.sleep(0.01)
            return fn(*a)
        return run

    name = "_plain_pass" if fast else "_packed_pass"
    monkeypatch.setattr(frozen_linear, name, slowed(getattr(frozen_linear, name)))
    monkeypatch.setattr(frozen_linear, "CALIBRATION_ROWS", 8)
    assert frozen_linear._calibrate([torch.randn(16, 8) for _ in range(2)], torch.float32) is fast
