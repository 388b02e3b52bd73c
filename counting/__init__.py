"""counting: an experiment suite for 'When Can Transformers Count to n?' (arXiv 2407.15160).

Importing it changes no process state. The command-line entry points set the number of XLA
CPU devices and the plotting backend themselves; a library user who trains cohorts on a CPU
calls `counting.runtime.devices.use_cpu_devices()` before the first JAX operation.
"""
