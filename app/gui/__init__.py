"""The Encotag desktop app (PySide6 + pyqtgraph).

Importing this package imports no Qt; ``app.gui.state`` (series, trajectory, live session and tap,
heads logic) is Qt-free. Start the app with
:func:`app.gui.application.run_gui` (what ``encotag gui`` does).
"""
