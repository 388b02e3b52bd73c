"""The paper's theory as code: exact constructions as weights of the suite's own
`Transformer`, and measurements of what they need.

- `weights`: hand-set parameters, the `Construction` bundle, the shared forward and head.
- `histogram`: the histogram solution (d >= m, tight at d = m), QC and histogram task.
- `count_attend` (+ `inversion`): CountAttend for any d >= 3 and m, with BOS.
- `mfe`: most frequent element with d = m + 1 (two layers).
- `positional`: no positions and no mask cannot tell x from x x.
- `precision`: the largest exact n per dtype; `cost`: CountAttend's width and logit scale.
- `coherence`: Welch bound, tight frames, random and optimised embeddings.
- `interference`: counting through m > d embeddings (projection, linear and any readout).
- `registry`, `sequences`, `fit`, `settings`, `tables`, `figures`: the plumbing of
  `counting-theory` (counting.cli.theory).
"""
