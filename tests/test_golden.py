"""The golden run guards the fingerprint rule (counting.store.fingerprint): one short training's exact
loss and accuracy are stored in tests/golden.json with the fingerprint, machine kind and jaxlib
they were produced under.

- Same fingerprint, same kind of machine, same jaxlib: the numbers must be equal, bit for bit.
  If they are not, a change outside the fingerprinted numerics files moved the arithmetic: add
  that file to `counting.store.fingerprint.NUMERICS` (or undo the change).
- Another fingerprint: the numerics code changed. That is right only for a deliberate change of
  the numbers (a model, a sampler, the optimiser): then regenerate the golden values with
  `python tests/test_golden.py --update` and retrain the committed results.
- A kind of machine with no stored entry: XLA rounds differently there, so the numbers are
  compared with a tolerance (loss within 1e-3 relative, accuracy within 0.02).
"""

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).with_name("golden.json")


def golden_config():
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny import tiny

    return tiny(task={"m": 4, "n": 8, "eval_size": 256}, model={"d": 8, "w": 32},
                train={"steps": 60, "batch": 32, "eval_every": 30, "warmup": 10}, experiment="golden")


def measure() -> dict:
    from counting.runtime import machine
    from counting.store.fingerprint import code_fingerprint
    from counting.sweep.cohort import train_cohort

    cfg = golden_config()
    (result,) = train_cohort([cfg])
    return {"fingerprint": code_fingerprint(cfg), "arithmetic": machine.label(machine.arithmetic()),
            "jaxlib": machine.versions().get("jaxlib"), "layout": result.layout,
            "loss": repr(result.metrics["loss"]), "accuracy": repr(result.metrics["accuracy"]), "steps": result.steps}


def entries() -> list[dict]:
    return json.loads(GOLDEN.read_text())["runs"] if GOLDEN.exists() else []


@pytest.mark.slow
def test_the_golden_run_moves_only_with_the_fingerprint():
    now = measure()
    stored = entries()
    assert stored, f"{GOLDEN} is missing: run `python tests/test_golden.py --update`"
    prints = {e["fingerprint"] for e in stored}
    assert now["fingerprint"] in prints, (
        f"the numerics code changed (fingerprint {now['fingerprint']}, golden values for {sorted(prints)}). If the "
        "numbers were meant to change, run `python tests/test_golden.py --update` and retrain the committed results; "
        "if not, undo the change")
    same = [e for e in stored if (e["fingerprint"], e["arithmetic"], e["jaxlib"]) ==
            (now["fingerprint"], now["arithmetic"], now["jaxlib"])]
    if same:
        assert (same[0]["loss"], same[0]["accuracy"], same[0]["steps"]) == (now["loss"], now["accuracy"], now["steps"]), (
            "same fingerprint, machine kind and jaxlib, other numbers: a file outside counting.store.fingerprint.NUMERICS "
            f"changed the arithmetic (stored {same[0]['loss']}/{same[0]['accuracy']}, now {now['loss']}/{now['accuracy']})")
    else:  # another kind of machine: XLA rounds differently, so only close
        ref = next(e for e in stored if e["fingerprint"] == now["fingerprint"])
        assert float(now["loss"]) == pytest.approx(float(ref["loss"]), rel=1e-3)
        assert abs(float(now["accuracy"]) - float(ref["accuracy"])) <= 0.02


def update() -> None:
    """Replaces the entry of this machine kind and jaxlib (and drops entries of other
    fingerprints: they describe code that is gone)."""
    from counting.runtime.devices import use_cpu_devices

    use_cpu_devices()
    now = measure()
    kept = [e for e in entries() if e["fingerprint"] == now["fingerprint"]
            and (e["arithmetic"], e["jaxlib"]) != (now["arithmetic"], now["jaxlib"])]
    GOLDEN.write_text(json.dumps({"note": __doc__.split("\n\n")[0].replace("\n", " "), "runs": kept + [now]},
                                 indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {now}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_golden.py --update")
    update()
