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
