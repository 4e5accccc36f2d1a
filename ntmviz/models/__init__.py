"""The families of memory model, one module each, every one a step over the contract
(contract.py): each module declares its `FAMILY` and gives its model a `record(inputs,
lengths)` that hands back a contract.Recording.

    ntm.py      the Neural Turing Machine (its declaration lives with its heads: heads.NTM)
    lstm.py     the paper's LSTM baseline (no memory)
    memn2n.py   end-to-end memory networks over stories
    dnc.py      the differentiable neural computer (allocation, temporal links, read modes)
    stack.py    neural stacks, queues and deques (continuous push, pop and read)
    stack_rnn.py  the stack-augmented RNN (stacks moved by push / pop / no-op distributions)
    dmn.py      dynamic memory networks over stories (passes of attention gates over the facts)
    pointer.py  pointer networks (an LSTM decoder whose attention over the encoded inputs is its output)
    seq2seq.py  an RNN encoder-decoder with additive (Bahdanau) attention, or without (RNNenc)

`build_model(config)` makes the model a config describes; `family(kind)` its declaration.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from ..contract import Family
from ..errors import ConfigError
from . import dmn, dnc, lstm, memn2n, ntm, pointer, seq2seq, stack, stack_rnn
from .dmn import DMN
from .dnc import DNC
from .lstm import LSTMBaseline
from .memn2n import MemN2N
from .ntm import NTM
from .pointer import PointerNetwork
from .seq2seq import Seq2Seq
from .stack import NeuralStack
from .stack_rnn import StackRNN

MODELS = {"ntm": NTM, "lstm": LSTMBaseline, "memn2n": MemN2N, "dnc": DNC,
          "stack": NeuralStack, "queue": NeuralStack, "deque": NeuralStack, "stack_rnn": StackRNN, "dmn": DMN,
          "pointer": PointerNetwork, "seq2seq": Seq2Seq}
FAMILIES = {"ntm": ntm.FAMILY, "lstm": lstm.FAMILY, "memn2n": memn2n.FAMILY, "dnc": dnc.FAMILY, **stack.FAMILIES,
            "stack_rnn": stack_rnn.FAMILY, "dmn": dmn.FAMILY, "pointer": pointer.FAMILY,
            "seq2seq": seq2seq.FAMILY}


def family(kind: str) -> Family:
    """The declaration of a model kind ("ntm", "lstm", "dnc", ...), head counts unresolved."""
    if kind not in FAMILIES:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[kind]


def build_model(config: ModelConfig, seeds: list[int] | None = None) -> torch.nn.Module:
    """The model a config describes: one model, or one per seed, each initialised from its own
    seed (so model k of seeds [0..7] is the model seed k alone would give). Leaves torch's
    global random state as it found it."""
    cls = MODELS[config.kind]
    if seeds is None:
        return cls(config)
    if not seeds:
        raise ConfigError("no seeds given")
    members = []
    with torch.random.fork_rng(devices=[]):
        for seed in seeds:
            torch.manual_seed(seed)
            members.append(cls(config))
    return cls.stack(members)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or CUDA when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = ["NTM", "LSTMBaseline", "MemN2N", "DMN", "DNC", "NeuralStack", "StackRNN", "PointerNetwork", "Seq2Seq",
           "MODELS", "FAMILIES", "family", "build_model", "pick_device"]
