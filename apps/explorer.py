"""The ntmviz explorer: `panel serve apps/explorer.py` (the same as `ntmviz serve`).

Opens on the shipped copy checkpoint (checkpoints/copy-ntm.safetensors) with an episode
ready to play. Set NTMVIZ_CHECKPOINTS to a folder (or several, joined with ':') to list your own
checkpoints too; the app then opens on the first of them.
"""

import ntmviz.app
from ntmviz.app import Explorer

ntmviz.app.extension()  # pn.extension(), with every stylesheet and script from this server

Explorer.default().servable(title="ntmviz explorer")
