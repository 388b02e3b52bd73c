"""The machine and JAX's setup on it: what the machine is (`machine`), how many XLA CPU devices
the suite's commands give JAX and its persistent compilation cache (`devices`), and the XLA
options and the compile-once jit every stage uses (`xla`)."""
