"""Help ▸ About: version, the pack's name, licence and provenance in a scrolling text, on any screen.

The provenance of a trained pack is long (training commands, data per source, metrics: tens of KB), so
it is shown in a scrolling browser inside a dialog no larger than 80 % of the screen, its OK button
always on screen (a plain message box grew to the text's height: 5679 px for the shipped pack).
"""

from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from app import __version__, paths

MAX_VALUE_CHARS = 4000  # one provenance entry shown at most this long
SIZE = (640, 560)


def about_html(info: Any) -> str:
    """The About text (``info``: the loaded ``PackInfo`` or None while loading)."""
    if info is None:
        pack = "<p>The model pack is still loading.</p>"
    else:
        rows = []
        for key, value in sorted(info.provenance.items()):
            text = value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)
            if len(text) > MAX_VALUE_CHARS:
                text = text[:MAX_VALUE_CHARS] + " …"
            rows.append(f"<li><b>{html.escape(str(key))}</b>: <pre>{html.escape(text)}</pre></li>")
        pack = (
            f"<p><b>Model pack:</b> {html.escape(info.name)} (id {html.escape(info.pack_id[:12])})<br>"
            f"<b>Licence:</b> {html.escape(info.licence)}</p>"
            + (f"<p><b>Provenance</b></p><ul>{''.join(rows)}</ul>" if rows else "")
        )
    return (
        f"<h3>Encotag {__version__}</h3><p>Tells you what you are hearing: EnCodec latents → MobileNetV3 →"
        f" AudioSet tags, with embeddings and personal heads.</p>{pack}"
        f"<p>AudioSet labels: Google, CC BY 4.0.<br>Logs: {html.escape(str(paths.log_dir()))}</p>"
    )


class AboutDialog(QDialog):
    """The About box: a scrolling text and an OK button, sized to fit the screen."""

    def __init__(self, parent: QWidget | None, info: Any) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Encotag")
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html(info))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.buttons)
        screen = (parent.screen() if parent is not None else self.screen()).availableGeometry()
        w = min(SIZE[0], int(screen.width() * 0.8))
        h = min(SIZE[1], int(screen.height() * 0.8))
        self.setMaximumSize(int(screen.width() * 0.9), int(screen.height() * 0.9))
        self.resize(w, h)


def about(parent: QWidget, info: Any) -> AboutDialog:
    """Open the About box (not blocking the window) and return it."""
    dialog = AboutDialog(parent, info)
    dialog.open()
    return dialog
