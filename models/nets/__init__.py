"""The networks: MobileNetV3 (``mobilenet``), the front ends that feed it mel bands or codec latents
(``frontends``) and the tagger that joins them (``tagger``)."""
