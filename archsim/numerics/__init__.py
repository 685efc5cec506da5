"""The integer spec in numpy: the arithmetic rules every stage agrees on (docs/quantization.md).

Torch-free and stage-free: the quantizers (archsim.quant), the front end (archsim.frontend),
the torch oracle (archsim.quant.integer_model) and the functional executor
(archsim.functional) all compute with these functions, so a rule has one definition.
"""
