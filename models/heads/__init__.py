"""Personal heads on a pack's embeddings: the head itself (``heads``), fitting (``head_fit``), the heads
folder and example sets (``head_store``), labelled files → examples (``head_data``) and the head bench
(``head_bench``)."""
