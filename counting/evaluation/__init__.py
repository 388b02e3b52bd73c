"""Evaluation of trained models: the held-out, out-of-distribution and worst-case family
accuracies (`evaluate`), and what training exposed of the two-token support (`exposure`)."""
