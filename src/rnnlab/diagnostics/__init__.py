"""Seeing inside recurrent networks: measured, not drawn.

- `gradients`: how the gradient of a last-step loss fades (or explodes) back through time,
  and what orthogonal initialisation, the forget-gate bias and clipping do to it.
- `memory`: the adding and copy tasks, to find the longest gap each cell bridges.
- `cells`: what the units and gates of a trained character model track.

`rnnlab diagnose {gradients,memory,cells}` runs each; `plots.py` draws them.
"""
