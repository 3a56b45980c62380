"""Model packs: the folder format (``pack``, ``pack_manifest``: manifest + safetensors, strict load) and
the EfficientAT teacher converted into a pack (``teacher_pack``)."""
