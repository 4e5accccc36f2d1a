"""ntmviz.app: the Panel explorer (docstring completed below)."""
from .export import export_html, export_html_string
from .payload import episode_payload
from .state import Playback
from .views import EpisodeView, FocusView, HeadLocationsView, MemoryView, Player, SequenceView
from .explorer import Explorer
from .sources import Sources
