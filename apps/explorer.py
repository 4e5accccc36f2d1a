"""The ntmviz explorer: `panel serve apps/explorer.py`.

Opens on checkpoints/copy-ntm.safetensors with an episode ready to play (or the first
checkpoint there, or an untrained NTM with a note). Set NTMVIZ_CHECKPOINTS to list another folder.
"""

import os
from pathlib import Path

import panel as pn

from ntmviz.app import Explorer

pn.extension()

folder = os.environ.get("NTMVIZ_CHECKPOINTS", Path(__file__).resolve().parent.parent / "checkpoints")
Explorer.default(folder).servable(title="ntmviz explorer")
