"""Per-layer attribution: which source positions of the states a layer hands the decoder each of its readout
tokens comes from. Methods (``grad``, ``ig``, ``occlusion``) are small registered modules; ``faithfulness``
checks them against causal effects."""
