"""``python -m app`` launches Encotag (the GUI with no arguments)."""

from app.cli import main

raise SystemExit(main())
