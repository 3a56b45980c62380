"""Encotag application layer: command line, audio input, settings and the Qt GUI.

Everything here except ``app.gui`` is Qt-free.
"""

__version__ = "0.1.0"
