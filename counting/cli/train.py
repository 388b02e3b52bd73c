"""counting-train: train one model (Hydra app). Example:

    counting-train task.name=qc task.m=16 task.n=16 model.d=32 train.steps=2000
"""

import hydra
from omegaconf import DictConfig

from counting.cli import CONF_DIR, run_config


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(raw: DictConfig) -> None:
    cfg = run_config(raw)
    from counting.runner import execute  # imports jax: after validation

    folder, record = execute(cfg)
    m = record.get("metrics", {})
    print(
        f"{record['status']}: {cfg.task.name} m={cfg.task.m} n={cfg.task.n} d={cfg.model.d} "
        f"accuracy={m.get('accuracy', float('nan')):.4f} (baseline {m.get('baseline_accuracy', float('nan')):.4f}) "
        f"after {record.get('steps')} steps"
    )
    print(f"record: {folder / 'record.json'}")


if __name__ == "__main__":
    main()
