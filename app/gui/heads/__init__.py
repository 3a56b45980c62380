"""The personal heads in the window: composed panels (the head list, the class editor, the train box),
the "Personal head" dock, the background jobs, and :func:`install`, the window's hook.

The Qt-free logic lives in :mod:`app.gui.state.heads`.
"""

from app.gui.heads.dialog import HeadsFeature, install

__all__ = ["HeadsFeature", "install"]
