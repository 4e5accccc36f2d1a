"""The engine on a CUDA GPU: the same code as on the CPU, same numbers. Skipped, with the reason
printed in pytest's summary (-rs), where there is no GPU."""

import pytest
import torch

import ntmviz
from ntmviz.models import build_model
from ntmviz.tasks import get_task
from ntmviz.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU here: the GPU run of the engine is not tested on this machine")


def test_forward_and_gradients_on_the_gpu_match_the_cpu():
    config = ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=9, memory_width=5, controller_size=8,
                              read_heads=2, write_heads=2)
    cpu = build_model(config, seeds=[0, 1]).double()
    gpu = build_model(config, seeds=[0, 1]).double().cuda()
    x = torch.rand(4, 6, 4, dtype=torch.float64)
    y_cpu, y_gpu = cpu(x), gpu(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu)
    y_cpu.sum().backward()
    y_gpu.sum().backward()
    for (name, a), b in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(b.grad.cpu(), a.grad, msg=name)


def test_an_ensemble_trains_and_records_on_the_gpu():
    task = get_task("copy", bits=3, max_length=4)
    config = ntmviz.NTMConfig(task.input_size, task.output_size, 8, 5, controller_size=12)
    trainer = Trainer(build_model(config, seeds=[0, 1]).cuda(), task, seeds=[0, 1], batch_size=4)
    trainer.run(3)
    episode = ntmviz.record(trainer.model.member(0), task.sample(1, seed=0).inputs[0])
    assert episode.memory.shape[1:] == (8, 5)


def test_the_memory_step_runs_the_triton_kernels_on_the_gpu_and_matches_the_reference():
    """The registered operator on CUDA tensors: the Triton kernels (compiled, not interpreted), values and
    gradients against the torch ops on the CPU in float64; then a short training loop that records it."""
    from ntmviz import native, ops
    from ntmviz.heads import head_sizes

    if ops.triton_step() is None:
        pytest.skip("triton is not importable here: the GPU runs the step as torch ops (pip install triton)")
    g = torch.Generator().manual_seed(0)
    R, W, N, M, S = 2, 2, 9, 5, 3
    raw = torch.randn(6, sum(head_sizes(R + W, W, M, S)), generator=g, dtype=torch.float64)
    memory = torch.randn(6, N, M, generator=g, dtype=torch.float64)
    previous = torch.softmax(torch.randn(6, R + W, N, generator=g, dtype=torch.float64), -1)
    cpu = [t.clone().requires_grad_() for t in (raw, memory, previous)]
    gpu = [t.cuda().requires_grad_() for t in (raw, memory, previous)]
    assert ops.implementation(gpu[1]) == "triton"
    calls = native.calls()
    out_gpu = torch.ops.ntmviz.memory_step(*gpu, S, R)
    assert native.calls() == calls + 1
    out_cpu = ops.torch_forward(*cpu, S, R)
    for name, a, b in zip(ops.OUTPUTS, out_gpu, out_cpu):
        torch.testing.assert_close(a.cpu(), b, msg=name)
    assert torch.autograd.gradcheck(lambda *t: torch.ops.ntmviz.memory_step(*t, S, R)[:3], gpu, fast_mode=True)

    task = get_task("copy", bits=3, max_length=4)
    config = ntmviz.NTMConfig(task.input_size, task.output_size, 8, 5, controller_size=12)
    trainer = Trainer(build_model(config, seeds=[0]).cuda(), task, seeds=[0], batch_size=8)
    losses = [trainer.train_step().loss for _ in range(30)]
    assert trainer.compute["path"] == "gpu kernel" and trainer.compute["name"] == "triton"
    assert all(loss == loss for loss in losses) and sum(losses[-5:]) < sum(losses[:5])  # finite, and learning
