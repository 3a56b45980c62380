"""Tagging: a loaded pack (``engine``), analysis windows (``windows``), live and file tagging
(``pipeline``), tagging through codec codes (``code_tagging``), event merging (``events``) and the
frozen results that cross threads (``results``)."""
