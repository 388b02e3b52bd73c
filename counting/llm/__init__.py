"""The paper's counting probe for pretrained language models, with controlled m and n.

prompts (seeded prompt sets over an (m, n) grid) -> backends (hf, openai; by name) -> cache
(answers on disk) -> parse -> table (accuracy, 95% interval, invalid rate, signed error) ->
figures. Nothing here imports torch or transformers until the hf backend is built.
"""
