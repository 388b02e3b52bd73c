"""The debugger page (`counting-inspect NAME --serve`): choose a trained model of an experiment,
type or draw a sequence, and see what the model computes on it (the predicted count with the
probability of every count, the counting layer's attention over the positions, the residual
stream read on the token directions, the readout's output curve), then edit one thing (a
token, an embedding, BOS's attention, the query-key logits) and see the prediction before and
after. Local and offline: one static page and a JSON API on 127.0.0.1.

`debugger` holds the numbers (counting.inspect's, no web framework: importable without the
`serve` extra); `app` the Starlette app and `serve` (uvicorn), which need
`pip install -e '.[serve]'`.
"""
