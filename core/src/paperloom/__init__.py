"""paperloom: research papers as installable, composable, runnable plugins.

Importing this package is cheap (no torch): the CLI and plugin declarations rely on it.
"""

import pluggy

from .errors import UserError
from .interfaces import Check, Component, PluginInfo, Requirements, Task

__version__ = "0.2.0"

hookimpl = pluggy.HookimplMarker("paperloom")

__all__ = ["Check", "Component", "PluginInfo", "Requirements", "Task", "UserError", "hookimpl", "__version__"]
