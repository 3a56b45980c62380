"""Encotag's Qt-free engine: codec, tagger, embeddings, model packs, heads, training and evaluation.

Importing this package does no I/O and never imports PySide6.
"""
