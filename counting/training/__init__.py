"""Training: the jitted train step and its chunk (`train`), the loss and metrics (`metrics`), the
optimiser (`optimizer`), the stop rules (`stop`, `support`), successive halving's rungs
(`halving`), the cohort's compiled programs (`program`) and the XLA options (`xla`). These are
the numerics a record's fingerprint hashes (counting.store.fingerprint)."""
