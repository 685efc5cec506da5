"""Functional execution: the quantized graph computed in integers from the graph alone (numpy, no torch).

``arithmetic`` is the datapath of each engine kind (a multiplier array; the SAT's shifts and adds),
``executor`` runs layers tile by tile on them. The simulator drives it as tiles complete
(archsim.sim.scheduler); ``Executor.run`` executes a graph alone.
"""
