"""The audio codec: EnCodec (``codec``), its tagging-only variant (``tagging_codec``), the official
24 kHz checkpoint (``official``) and code-stream files (``codes``, ``.ecodes``)."""
