"""counting-llm: the counting probe on a pretrained language model (Hydra app).

    counting-llm -m experiment=llm_qc backend=smollm2-135m   # a packaged model (python -m counting.llm.models list)
    counting-llm -m experiment=llm_qc backend=hf backend.model=/path/to/checkpoint
    counting-llm -m experiment=llm_qc backend=hf backend.model=/path/to/folder backend.gguf_file=NAME.gguf
    counting-llm -m experiment=llm_qc backend=openai backend.base_url=http://127.0.0.1:8000/v1 backend.model=NAME
    counting-llm experiment=llm_qc action=report      # table and figures from the answers so far

Exit status 2: a bad config or setup (one line, before any work); 1: the backend failed
during the run (one line; the answers that arrived are cached, scored and tabulated).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig, OmegaConf

from counting.cli import fail, hydra_main, quiet_libraries
from counting.config import ConfigError


def report(cfg) -> None:
    """prompts.jsonl, table.csv over every model answered so far, samples.md, then the figures;
    prints a line per cell."""
    from counting.llm import prompts, table
    from counting.llm.run import experiment_root

    root = experiment_root(cfg)
    asked = prompts.generate(cfg.prompts)
    prompts.write(root / prompts.PROMPTS, asked)  # the prompt set this table is over
    keys = {prompts.prompt_key(r) for r in asked}
    path, rows, other = table.build(root, keys)
    for r in rows:
        print(f"  {r['model']} {r['method']} {r['form']} {r['task']} m={r['m']} n={r['n']}: accuracy {r['accuracy']:.3f} "
              f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}], invalid {r['invalid_rate']:.3f}, "
              f"signed error {r['mean_signed_error']:+.2f} (baseline {r['baseline_accuracy']:.3f}, N={r['samples']})")
    print(f"table: {path} ({len(rows)} rows)" + (f"; left out {other} answers to other prompt sets" if other else ""))
    from counting.llm import figures, samples

    data = figures.load(root, cfg.experiment, rows, keys)
    print(f"sample answers: {samples.write(root, data.samples)}")
    if cfg.figures:
        written = figures.plot_all(data)
        pngs = [p for paths in written.values() for p in paths if p.suffix == ".png"]
        print(f"{len(pngs)} figures (PNG + PDF) in {root / 'figures'}")


def main() -> None:
    """counting-llm: refuses an unknown backend in one line, then runs the Hydra app."""
    check_backend_choice(sys.argv[1:])
    app()


def check_backend_choice(overrides: list[str]) -> None:
    """`backend=NAME` picks a config group file; an unknown NAME gets one line here instead of
    Hydra's multi-line listing."""
    from counting.llm.config import BACKEND_CONFIGS

    for arg in overrides:
        key, sep, value = arg.lstrip("+~").partition("=")
        for name in value.split(",") if sep and key == "backend" else ():
            if name not in BACKEND_CONFIGS:
                fail(ConfigError(f"backend: unknown backend {name!r}; allowed: {', '.join(BACKEND_CONFIGS)}"))


@hydra_main("llm")  # conf/llm.yaml, with the experiment group (experiments/)
def app(raw: DictConfig) -> None:
    """The Hydra app: checks the config and the backend before any work, asks the model (action=run; a backend
    failure exits 1 after the report), then reports."""
    quiet_libraries()
    from counting.llm.backends import BackendError, preflight
    from counting.llm.config import LLMConfig

    try:
        cfg = LLMConfig.from_dict(OmegaConf.to_container(raw, resolve=True))
        problem = preflight(cfg.backend) if cfg.action == "run" else None
    except ConfigError as err:
        fail(err)
    if problem:
        fail(ConfigError(problem))
    status = 0
    if cfg.action == "run":
        from counting.llm.run import ask

        try:
            path, answered = ask(cfg)
            print(f"answers: {path} ({answered} prompts)")
        except BackendError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
    report(cfg)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
