"""The Qt-free state of the GUI: result series, the embedding trajectory, the live session and tap, and
the logic behind the Heads dialog. Nothing here imports PySide6 (tests/test_qt_free.py proves it), so
all of it is unit-testable without a display and safe to touch from any thread that owns it.
"""
