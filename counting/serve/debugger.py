"""The debugger's numbers, without the web: the models of a results folder, one sequence
through one model, and the hand-made interventions, each as plain JSON-ready data. Every
number comes from counting.inspect (`trace` for the forward pass read, `interventions` for
every edit, `geometry` for the embeddings) and counting.tasks.families (the drawn sequences); the
model is loaded through the OOD evaluator's Orbax loader (`counting.inspect.load`).

Requests name an experiment (a folder of the results directory the debugger was started on)
and a model (its hash): both must be plain names that resolve inside that directory
(`inside`), so `../`, an absolute path or a symlink out of it is refused. Bad input is a
`ServeError`: one line, for the page to show.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from counting.store import FINISHED, PARAMS, RECORD, RUNS, TABLE, Store, problem, read_record

READOUT_POINTS = 41  # shares of the readout curve, 0..1
LOADED = 8  # models kept loaded at once (least recently used dropped)
INTERVENTIONS = ("replace", "embedding", "bos", "logits")
MAX_SCALE = 100.0


class ServeError(ValueError):
    """A request the debugger refuses or cannot answer: one line for the page (HTTP 400)."""

    status = 400


class NotFound(ServeError):
    """An experiment or model that is not there, or a model whose parameters are not (404)."""

    status = 404


def one_line(text: str, limit: int = 1000) -> str:
    """The text on one line (its whitespace runs collapsed), cut to `limit` characters with a trailing '...'."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def inside(root: Path, *parts) -> Path:
    """root/parts resolved, refused unless every part is a plain name and the result (every
    symlink followed) lies inside root."""
    for part in parts:
        if not isinstance(part, str) or not part:
            raise ServeError(f"path: expected a name, got {part!r}")
        if part in (".", "..") or "/" in part or "\\" in part or "\x00" in part or Path(part).is_absolute():
            raise ServeError(f"path: {part!r} is not a plain name inside the results folder (refused)")
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base):
        raise ServeError(f"path: {'/'.join(parts)} leads outside the results folder (a symlink?): refused")
    return path


def clean(value):
    """JSON-ready: numpy to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# --- request values -------------------------------------------------------------------


def integer(value, what: str) -> int:
    """`value` when it is an int (not a bool), else a ServeError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServeError(f"{what}: expected an integer, got {value!r}")
    return value


def number(value, what: str, lo: float, hi: float) -> float:
    """`value` as a float when it is a finite number in [lo, hi], else a ServeError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ServeError(f"{what}: expected a number, got {value!r}")
    if not lo <= value <= hi:
        raise ServeError(f"{what}: must lie in [{lo:g}, {hi:g}], got {value:g}")
    return float(value)


def flag(value, what: str) -> bool:
    """`value` when it is a bool, else a ServeError naming `what`."""
    if not isinstance(value, bool):
        raise ServeError(f"{what}: expected true or false, got {value!r}")
    return value


# --- the models of an experiment ----------------------------------------------------------


@dataclasses.dataclass
class Entry:
    """One model of the list: its table row, and where its parameters are (or why not)."""

    hash: str
    row: dict
    folder: Path | None
    record: dict | None
    missing: str  # "" when its parameters are here, else the one line the page shows


def _hydra_value(value, default=None) -> str:
    """A table value as a Hydra override's value (a table's "none" reads back as None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "" or isinstance(value, float) and math.isnan(value):
        return "null" if default is None else "none"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _same(have, want) -> bool:
    key = lambda v: ("none" if v is None or v == "" or str(v).lower() in ("none", "null", "nan") else
                     str(v).lower() if isinstance(v, (bool, str)) else float(v))
    a, b = key(have), key(want)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    return a == b


def retrain_overrides(experiment: str, row: dict) -> tuple[list[str], str]:
    """(overrides, note): what to add to `counting-train -m experiment=NAME` so that it trains
    the model of `row` (a table row): its d, m and seed as the cell and cohort, every key the
    experiment sweeps, and every identity field where the row differs from the experiment's
    composed config (or, without experiments/NAME.yaml, from the defaults: `note` then says
    so). A searched lr or weight decay (successive halving) is left to the search."""
    from omegaconf import OmegaConf

    from counting.config import JobConfig
    from counting.experiment.compose import compose, experiment_names
    from counting.store.columns import identity_columns, identity_row

    note = ""
    if experiment in experiment_names():
        raw = compose([f"experiment={experiment}"], return_hydra_config=True)
    else:
        raw = compose([], return_hydra_config=True)
        note = f"no experiments/{experiment}.yaml: results/README.md names the command that trained {experiment}"
    swept = list((OmegaConf.to_container(raw.hydra.sweeper, resolve=True) or {}).get("params") or {})
    job = JobConfig.from_dict(OmegaConf.to_container(OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"]),
                                                     resolve=True))
    base = identity_row(job.run)
    out = [f"model.d={row['d']}", f"cohort.m=[{row['m']}]", f"cohort.seed=[{row['seed']}]"]
    searched = {"lr": bool(job.run.halving.lr), "weight_decay": bool(job.run.halving.weight_decay)}
    empty = lambda v: v is None or v == "" or isinstance(v, float) and math.isnan(v)
    no_rule = all(empty(row.get(f"train.stop.{k}")) for k in ("target", "patience"))
    if no_rule and job.run.train.stop.active:  # the row trained for its budget: switch the rule off
        out += ["train.stop.target=null", "train.stop.patience=null"]
    for col in identity_columns():
        if col.name in ("d", "m", "seed") or col.name not in row or searched.get(col.name):
            continue
        if no_rule and (col.path.startswith("train.stop.") or col.path == "train.eval_every"):
            continue  # empty without a rule (counting.store.columns.identity_row)
        have, want = base.get(col.name), row[col.name]
        if col.name == "k" and want == row["m"]:
            continue  # k = m is no limit: the same identity as k unset
        if isinstance(col.default, (tuple, list)):
            split = lambda v: [] if v in (None, "") else (str(v).split() if not isinstance(v, (tuple, list)) else list(v))
            same = len(split(have)) == len(split(want)) and all(_same(a, b) for a, b in zip(split(have), split(want)))
            text = "[" + ",".join(_hydra_value(v) for v in split(want)) + "]"
        else:
            same, text = _same(have, want), _hydra_value(want, col.default)
        if not same or col.path in swept:
            out.append(f"{col.path}={text}")
    return out, note


def retrain_command(results_dir: Path, experiment: str, row: dict) -> str:
    """The one-line command that retrains the model of `row` into results_dir/experiment."""
    try:
        overrides, note = retrain_overrides(experiment, row)
    except Exception as err:  # a broken experiment file: still say what to run
        overrides, note = [f"model.d={row.get('d')}", f"cohort.m=[{row.get('m')}]", f"cohort.seed=[{row.get('seed')}]"], \
            one_line(f"{type(err).__name__}: {err}", 120)
    command = " ".join(["counting-train", "-m", f"experiment={experiment}", f"results_dir={results_dir}",
                        *(shlex.quote(o) for o in overrides)])
    return command + (f" ({note})" if note else "")


def model_json(entry: Entry) -> dict:
    """The page's row of one model: its hash, its table columns (task, d, m, n, ..., accuracy, worst), its
    families' accuracies, and whether its parameters are here (else why not), JSON-ready."""
    row = entry.row
    families = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("family.")}
    keys = ("task", "d", "m", "n", "L", "H", "w", "pos", "attention", "norm", "seed", "lr", "weight_decay", "steps",
            "stop_reason", "status", "accuracy", "baseline_accuracy", "worst", "worst_off")
    return clean({"hash": entry.hash, **{k: row.get(k) for k in keys}, "families": families,
                  "params": not entry.missing, "missing": entry.missing or None})


# --- one model, loaded ----------------------------------------------------------------------


@dataclasses.dataclass
class Loaded:
    """One model loaded for the page: its entry, config, task, graph and parameters, its embeddings E_VxD (the m
    content rows, then BOS's), its drawn test families, and its most aligned pair of content tokens."""

    entry: Entry
    cfg: object  # RunConfig
    task: object  # counting.tasks.Task
    graphdef: object
    params: object
    E_VxD: np.ndarray  # content embeddings (m rows), then BOS's
    families: dict  # name -> counting.tasks.families.Content
    pair: tuple[int, int, float] | None  # the most aligned pair of content tokens and its |cos|

    @property
    def bos(self) -> bool:
        """Whether the model's task puts BOS in front."""
        return bool(self.cfg.task.bos)


def _labels(tokens_T: np.ndarray, task) -> tuple[list[str], list[str]]:
    from counting.tasks import BOS_ID, NUM_SPECIAL, SEP_ID

    content = task.content_slice()
    labels, roles = [], []
    for p, t in enumerate(tokens_T.tolist()):
        if t == BOS_ID and p == 0 and task.cfg.bos:
            labels.append("BOS"), roles.append("bos")
        elif t == SEP_ID:
            labels.append("SEP"), roles.append("sep")
        else:
            labels.append(str(t - NUM_SPECIAL))
            roles.append("content" if content.start <= p < content.stop else "query")
    return labels, roles


def softmax(logits_C: np.ndarray) -> np.ndarray:
    """The probabilities of one row of logits, in float64."""
    z = np.asarray(logits_C, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def _model_table(path: Path) -> bool:
    """A table.csv of trained models (the LLM probe's tables have none of their columns)."""
    try:
        with path.open() as f:
            header = f.readline().strip().split(",")
    except OSError:
        return False
    return {"d", "m", "seed", "hash"} <= set(header)


class Debugger:
    """The models under results_dir (the page's experiment list and model list), loaded on
    demand (a few at a time), and every view and intervention of one sequence."""

    def __init__(self, results_dir: str | Path, experiment: str):
        self.results_dir = Path(results_dir)
        self.experiment = experiment
        self._lock = threading.RLock()
        self._loaded: OrderedDict[tuple[str, str], Loaded] = OrderedDict()
        self._evaluators: dict[str, object] = {}
        self._commands: dict[tuple[str, str], str] = {}
        self._entries: dict[str, dict[str, Entry]] = {}

    # the list --------------------------------------------------------------------------

    def check(self) -> None:
        """ServeError unless the experiment it was started on has models or a table here."""
        inside(self.results_dir, self.experiment)
        root = self.results_dir / self.experiment
        if not (root / RUNS).is_dir() and not _model_table(root / TABLE):
            raise NotFound(f"experiment: {root} holds no runs/ and no {TABLE} (train it first: "
                           f"counting-train -m experiment={self.experiment} results_dir={self.results_dir})")

    def experiments(self) -> dict:
        """The experiment list: every folder of results_dir with runs/ or a table.csv of trained models, the one
        it was started on, and results_dir."""
        names = []
        if self.results_dir.is_dir():
            for p in sorted(self.results_dir.iterdir()):
                try:
                    inside(self.results_dir, p.name)
                except ServeError:
                    continue
                if (p / RUNS).is_dir() or _model_table(p / TABLE):
                    names.append(p.name)
        return {"experiments": names, "default": self.experiment, "results_dir": str(self.results_dir)}

    def entries(self, experiment: str, fresh: bool = False) -> dict[str, Entry]:
        """hash -> Entry: every finished run folder (record.json through the store), else the
        rows of the committed table.csv (whose parameters git does not hold); read again when
        `fresh` (the page's model list) or not read yet."""
        with self._lock:
            if fresh or experiment not in self._entries:
                self._entries[experiment] = self._read_entries(experiment)
            return self._entries[experiment]

    def _read_entries(self, experiment: str) -> dict[str, Entry]:
        from counting.store.aggregate import row_of

        root = inside(self.results_dir, experiment)
        if not root.is_dir():
            raise NotFound(f"experiment: no folder {experiment!r} in {self.results_dir}")
        store = Store(self.results_dir, experiment)
        out: dict[str, Entry] = {}
        for folder in store.run_folders():
            try:
                folder = inside(self.results_dir, experiment, RUNS, folder.name)
            except ServeError:
                continue  # a run folder that links out of the results folder is not read
            record = read_record(folder)
            if record is None or record.get("status") not in FINISHED:
                continue
            try:
                row = row_of(record, folder)
            except (ValueError, KeyError, TypeError):  # a record of no config this code reads: not listed
                continue
            why = problem(folder)
            missing = ""
            if why is not None:
                missing = f"{experiment}/{record['hash']}: {why}"
            out[record["hash"]] = Entry(record["hash"], row, folder, record, missing)
        if not out and store.path(TABLE).exists():
            from counting.store.columns import TableError, read_rows

            try:
                rows = read_rows(store.path(TABLE))
            except TableError as err:
                raise ServeError(str(err)) from None
            for row in rows:
                if row.get("status") in FINISHED and row.get("hash"):
                    out[row["hash"]] = Entry(row["hash"], row, None, None, f"{experiment}/{row['hash']}: no saved "
                                             f"parameters here ({experiment}/{RUNS}/ is not in git)")
        return out

    def models(self, experiment: str | None = None) -> dict:
        """The model list of an experiment (by default the one it was started on), read afresh and sorted by
        task, d, m, n, seed, lr and hash, with a note when none of them has its parameters here."""
        experiment = experiment or self.experiment
        entries = self.entries(experiment, fresh=True)
        models = [model_json(e) for e in entries.values()]
        models.sort(key=lambda r: (str(r["task"]), r["d"] or 0, r["m"] or 0, r["n"] or 0, r["seed"] or 0,
                                   r["lr"] or 0, r["hash"]))
        without = sum(not r["params"] for r in models)
        note = ""
        if models and without == len(models):
            note = (f"{experiment}: none of its {len(models)} models has saved parameters here (results/{experiment}/"
                    f"{RUNS}/ is not in git); choose one to see the command that retrains it")
        return {"experiment": experiment, "models": models, "note": note or None}

    def entry(self, experiment: str, model: str) -> Entry:
        """The Entry of a finished model (by hash) of an experiment; NotFound when it has none."""
        inside(self.results_dir, experiment, RUNS, model)  # names only, inside the folder
        entries = self.entries(experiment)
        if model not in entries:
            raise NotFound(f"model: {experiment} has no finished model {model!r}")
        return entries[model]

    def missing_line(self, experiment: str, entry: Entry) -> str:
        """Why the model's parameters are not here, and the command that retrains it (computed once per model)."""
        key = (experiment, entry.hash)
        if key not in self._commands:
            self._commands[key] = retrain_command(self.results_dir, experiment, entry.row)
        return f"{entry.missing}; retrain it: {self._commands[key]}"

    # loading -------------------------------------------------------------------------------

    def evaluator(self, experiment: str):
        """The experiment's OOD evaluator (counting.evaluation.evaluate.Evaluator), made once, sized for its
        largest m."""
        from counting.evaluation.evaluate import Evaluator
        from counting.tasks import NUM_SPECIAL

        if experiment not in self._evaluators:
            vocab = max((e.row.get("m") or 0 for e in self.entries(experiment).values()), default=0)
            self._evaluators[experiment] = Evaluator(vocab + NUM_SPECIAL)
        return self._evaluators[experiment]

    def load(self, experiment: str, model: str) -> Loaded:
        """The model loaded (its parameters, embeddings and families), from a cache of the LOADED most recently
        used; NotFound when its parameters are not here."""
        with self._lock:
            key = (experiment, model)
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            entry = self.entry(experiment, model)
            if entry.missing:
                raise NotFound(self.missing_line(experiment, entry))
            for part in (RECORD, PARAMS):
                inside(self.results_dir, experiment, RUNS, model, part)
            loaded = self._load(experiment, entry)
            self._loaded[key] = loaded
            while len(self._loaded) > LOADED:
                self._loaded.popitem(last=False)
            return loaded

    def _load(self, experiment: str, entry: Entry) -> Loaded:
        from counting.config import FamiliesConfig, RunConfig
        from counting.inspect.load import InspectError, SavedModel, load_model
        from counting.store.aggregate import read_families
        from counting.tasks import BOS_ID
        from counting.tasks.families import family_content, most_aligned, pair_set_of

        cfg = RunConfig.from_record(entry.record["config"])
        evaluator = self.evaluator(experiment)
        try:
            graphdef, params = load_model(evaluator, SavedModel(entry.folder, entry.record, cfg))
        except InspectError as err:
            raise NotFound(f"{experiment}/{err}") from None
        from flax import nnx

        from counting.inspect.geometry import content_embeddings

        net = nnx.merge(graphdef, params)
        m = cfg.task.m
        E_MxD = content_embeddings(net, m)
        E_VxD = np.concatenate([E_MxD, np.asarray(net.embed.embedding[...], np.float64)[BOS_ID][None]])
        done = read_families(entry.folder) or {}
        defaults = FamiliesConfig()
        families = family_content(cfg.task, E_MxD, int(done.get("size") or defaults.size),
                                  int(done.get("seed", defaults.seed)))
        pair = None
        if m >= 2:  # as the family aligned chooses: among the training pairs (counting.tasks.pairs)
            allowed_MxM = np.zeros((m, m), bool)
            a_P, b_P = pair_set_of(cfg.task, "train")
            allowed_MxM[a_P, b_P] = True
            b_M = most_aligned(E_MxD, allowed_MxM)
            U = E_MxD / np.maximum(np.linalg.norm(E_MxD, axis=1, keepdims=True), 1e-12)
            cos_M = np.array([abs(U[a] @ U[b]) if b >= 0 else -1.0 for a, b in enumerate(b_M)])
            a = int(np.argmax(cos_M))
            pair = (a, int(b_M[a]), float(cos_M[a])) if b_M[a] >= 0 else None
        return Loaded(entry, cfg, evaluator.task(cfg.task), graphdef, params, E_VxD, families, pair)

    def info(self, experiment: str, model: str) -> dict:
        """What the page shows of a loaded model before any sequence: its row, its task's n, m, BOS and query,
        H, the sequence length, its families, its most aligned pair, and whether its counting layer has
        query-key logits."""
        loaded = self.load(experiment, model)
        t = loaded.cfg.task
        return clean({"model": model_json(loaded.entry), "task": t.name, "n": t.n, "m": t.m, "bos": t.bos,
                      "query": t.query if loaded.task.asks_query() else None, "H": loaded.cfg.model.H,
                      "length": loaded.task.length, "families": list(loaded.families),
                      "most_aligned": None if loaded.pair is None else
                      {"a": loaded.pair[0], "b": loaded.pair[1], "cos": loaded.pair[2]},
                      "query_key": self._has_query_key(loaded)})

    @staticmethod
    def _has_query_key(loaded: Loaded) -> bool:
        from counting.inspect.interventions import has_query_key

        return has_query_key(loaded.graphdef, loaded.params)

    # sequences -----------------------------------------------------------------------------

    def sequence(self, loaded: Loaded, content, query, position) -> tuple[np.ndarray, int | None, int]:
        """(content_N, query, read position in T), checked against the model's task."""
        t = loaded.cfg.task
        n, m = t.n, t.m
        if not isinstance(content, list):
            raise ServeError(f"sequence: expected a list of integers, got {type(content).__name__}")
        for i, token in enumerate(content):
            if isinstance(token, bool) or not isinstance(token, int):
                raise ServeError(f"sequence: token {i + 1} is {token!r}, not an integer")
        if len(content) > n:
            raise ServeError(f"sequence: {len(content)} tokens, longer than n = {n} (this model reads exactly n)")
        if len(content) < n:
            raise ServeError(f"sequence: {len(content)} tokens; this model reads exactly n = {n}")
        for i, token in enumerate(content):
            if not 0 <= token < m:
                raise ServeError(f"sequence: token {i + 1} is {token}, outside 0..{m - 1} (m = {m})")
        q = None
        if loaded.task.asks_query():
            if query is None:
                raise ServeError(f"query: this task ({t.name}) needs a query token in 0..{m - 1}")
            q = integer(query, "query")
            if not 0 <= q < m:
                raise ServeError(f"query: {q} is outside 0..{m - 1} (m = {m})")
        content_slice = loaded.task.content_slice()
        if loaded.task.reads_any_content_position():
            j = n - 1 if position is None else integer(position, "position")
            if not 0 <= j < n:
                raise ServeError(f"position: {j} is outside 0..{n - 1} (the content positions)")
            p = content_slice.start + j
        else:
            p = loaded.task.answer_positions[-1]
        return np.asarray(content, np.int64), q, p

    def batch(self, loaded: Loaded, content_N: np.ndarray, q: int | None):
        """The framed, labelled batch of one sequence (content_N and, for QC, the query q)."""
        import jax.numpy as jnp

        x_1xN = jnp.asarray(content_N[None], jnp.int32)
        q_1 = None if q is None else jnp.asarray([q], jnp.int32)
        return loaded.task.batch_of(x_1xN, q_1)

    def draw(self, experiment: str, model: str, family, seed=0, most_aligned=False) -> dict:
        """One sequence of a family of the model's (chosen by `seed`; with `most_aligned`, one of the family
        aligned made of its most aligned pair only): its row, label, tokens and query."""
        loaded = self.load(experiment, model)
        if not isinstance(family, str) or family not in loaded.families:
            raise ServeError(f"family: {family!r} is not one of this model's families ({', '.join(loaded.families)})")
        seed = integer(seed, "seed")
        content = loaded.families[family]
        rows = np.arange(len(content.q_B))
        label = family
        if flag(most_aligned, "most_aligned"):
            if family != "aligned" or loaded.pair is None:
                raise ServeError("most_aligned: only with the family aligned")
            a, b, _ = loaded.pair
            x = content.x_BxN
            rows = rows[(x == a).any(1) & (x == b).any(1) & np.isin(x, [a, b]).all(1)]
            label = f"aligned, its most aligned pair ({a}, {b})"
            if not len(rows):
                raise ServeError(f"most_aligned: the family aligned holds no sequence of the pair ({a}, {b})")
        i = int(rows[np.random.default_rng(seed).integers(len(rows))])
        query = int(content.q_B[i]) if loaded.task.asks_query() else None
        return {"family": family, "row": i, "label": f"{label}, sequence {i}", "sequence": content.x_BxN[i].tolist(),
                "query": query}

    # the views -----------------------------------------------------------------------------

    def _read(self, loaded: Loaded, batch, p: int, state=None) -> dict:
        """The views of one run (the model's own, or with edited parameters) through trace."""
        from counting.inspect.trace import trace

        tr = trace(loaded.graphdef, loaded.params if state is None else state, loaded.task, batch, 1)
        a = int(np.flatnonzero(tr.pos_A == p)[0])
        at_R = list(loaded.task.answer_positions)
        r = at_R.index(p) if p in at_R else 0
        return self._views(loaded, tr.tokens_BxT[0], p, tr.att_BxHxAxT[0, :, a], tr.resid_BxAxD[0, a],
                           tr.logits_BxRxC[0, r], int(tr.labels_BxR[0, r]), tr.is_match_BxAxT[0, a], tr.is_bos_T)

    def _views(self, loaded: Loaded, tokens_T, p, att_HxT, resid_D, logits_C, label, match_T, bos_T) -> dict:
        from counting.tasks import NUM_SPECIAL

        labels, roles = _labels(np.asarray(tokens_T), loaded.task)
        probs = softmax(logits_C)
        mass = [float(att_HxT[h][bos_T].sum() + att_HxT[h][match_T].sum()) for h in range(att_HxT.shape[0])]
        E = loaded.E_VxD
        norms = np.linalg.norm(E, axis=1)
        proj = (E @ resid_D) / np.maximum(norms, 1e-30)
        r_norm = float(np.linalg.norm(resid_D))
        names = [str(t) for t in range(loaded.cfg.task.m)] + ["BOS"]
        return {
            "tokens": np.asarray(tokens_T).tolist(), "labels": labels, "roles": roles, "position": p,
            "prediction": {"count": int(np.argmax(logits_C)), "probs": probs, "logits": np.asarray(logits_C),
                           "true": label},
            "attention": {"weights": att_HxT, "head": int(np.argmax(mass)), "bos": bos_T, "match": match_T},
            "embedding": {"tokens": names, "projection": proj, "cosine": proj / max(r_norm, 1e-30),
                          "norm": r_norm, "has_bos": loaded.bos,
                          "query": int(tokens_T[p]) - NUM_SPECIAL if int(tokens_T[p]) >= NUM_SPECIAL else None},
        }

    def full_attention(self, loaded: Loaded, batch):
        """The model's own run through interventions.edit_attention (datt = 0): every row of
        the counting layer's attention (the readout curve edits them)."""
        from counting.inspect.interventions import edit_attention

        tokens = np.asarray(batch.tokens_BxT)
        H, T = loaded.cfg.model.H, tokens.shape[1]
        return edit_attention(loaded.graphdef, loaded.params, tokens, np.zeros((1, H, T, T), np.float32),
                              loaded.task.answer_positions)

    def views(self, experiment: str, model: str, sequence, query=None, position=None) -> dict:
        """The views of one sequence through the model at the read position: its tokens, prediction, attention,
        embedding projection, the readout curve and the model's row, JSON-ready."""
        loaded = self.load(experiment, model)
        content_N, q, p = self.sequence(loaded, sequence, query, position)
        batch = self.batch(loaded, content_N, q)
        out = self._read(loaded, batch, p)
        out["readout"] = self.readout(loaded, batch, p, out)
        out["model"] = model_json(loaded.entry)
        return clean(out)

    def _keys(self, loaded: Loaded, views: dict) -> tuple[np.ndarray, str]:
        if loaded.bos:
            return np.asarray(views["attention"]["bos"], bool), "BOS"
        return np.asarray(views["attention"]["match"], bool), "matches"

    def readout(self, loaded: Loaded, batch, p: int, views: dict) -> dict:
        """The readout's output curve: the prediction as the counting layer's share of
        attention on BOS (the query's matches without BOS) at the read position goes from 0 to
        1 in every head (interventions.set_key_share, the other keys scaled together),
        with the current share and, with BOS, where c matches put it (K / (c + K), K = this
        row's BOS-to-match weight ratio)."""
        from counting.inspect.interventions import edit_attention, set_key_share

        own = self.full_attention(loaded, batch)
        keys_T, name = self._keys(loaded, views)
        T = own.att_BxHxTxT.shape[-1]
        rows_T = np.arange(T) == p
        allowed = np.tril(np.ones((T, T), bool)) if loaded.cfg.model.causal else None
        share_G = np.linspace(0.0, 1.0, READOUT_POINTS)
        G = len(share_G)
        att_GxHxTxT = np.repeat(own.att_BxHxTxT, G, axis=0)
        datt = set_key_share(att_GxHxTxT, keys_T, share_G, rows_T, allowed)
        tokens_GxT = np.repeat(np.asarray(batch.tokens_BxT), G, axis=0)
        at_R = list(loaded.task.answer_positions)
        r = at_R.index(p) if p in at_R else 0
        logits_GxC = edit_attention(loaded.graphdef, loaded.params, tokens_GxT, datt, tuple(at_R)).logits_BxRxC[:, r]
        probs_GxC = np.stack([softmax(row) for row in logits_GxC])
        classes = np.arange(probs_GxC.shape[1])
        att_HxT = np.asarray(views["attention"]["weights"], np.float64)
        current = float(att_HxT[:, keys_T].sum(-1).mean())
        law, K = [], float("nan")
        if loaded.bos:
            match_T = np.asarray(views["attention"]["match"], bool)
            h = views["attention"]["head"]
            M = int(match_T.sum())
            if M > 0 and att_HxT[h][match_T].sum() > 0:
                K = float(att_HxT[h][keys_T].sum() / (att_HxT[h][match_T].sum() / M))
                law = [{"count": c, "share": K / (c + K)} for c in range(loaded.cfg.task.n + 1) if c + K > 0]
        return {"keys": name, "share": share_G, "count": probs_GxC.argmax(1), "expected": probs_GxC @ classes,
                "p_count": probs_GxC.max(1), "current": current, "current_count": views["prediction"]["count"],
                "K": K, "law": law}

    # interventions -------------------------------------------------------------------------

    def intervene(self, experiment: str, model: str, sequence, query=None, position=None, kind=None,
                  **args) -> dict:
        """The views before and after one edit (`INTERVENTIONS`); every value is checked
        before anything runs."""
        loaded = self.load(experiment, model)
        content_N, q, p = self.sequence(loaded, sequence, query, position)
        edit = self.edit(loaded, content_N, q, kind, args)
        batch = self.batch(loaded, content_N, q)
        before = self._read(loaded, batch, p)
        from counting.inspect import interventions as iv
        from counting.tasks import NUM_SPECIAL

        if kind == "replace":
            after = self._read(loaded, self.batch(loaded, edit["sequence"], edit["query"]), p)
        elif kind == "embedding":
            state = iv.mix_embeddings(loaded.graphdef, loaded.params, edit["token"] + NUM_SPECIAL,
                                      edit["toward"] + NUM_SPECIAL, edit["alpha"])
            after = self._read(loaded, batch, p, state)
        elif kind == "bos":
            own = self.full_attention(loaded, batch)
            T = own.att_BxHxTxT.shape[-1]
            rows_T = None if edit["every_position"] else np.arange(T) == p
            datt = iv.reweight_keys(own.att_BxHxTxT, np.arange(T) == 0, edit["scale"], rows_T, edit["renormalize"])
            edited = iv.edit_attention(loaded.graphdef, loaded.params, np.asarray(batch.tokens_BxT), datt,
                                       loaded.task.answer_positions)
            at_R = list(loaded.task.answer_positions)
            r = at_R.index(p) if p in at_R else 0
            after = self._views(loaded, np.asarray(batch.tokens_BxT)[0], p, edited.att_BxHxTxT[0, :, p],
                                edited.resid_BxTxD[0, p], edited.logits_BxRxC[0, r], before["prediction"]["true"],
                                np.asarray(before["attention"]["match"], bool),
                                np.asarray(before["attention"]["bos"], bool))
        else:
            after = self._read(loaded, batch, p, iv.scale_logits(loaded.graphdef, loaded.params, edit["scale"]))
        label = edit.pop("label")
        if kind == "replace":
            edit["sequence"] = edit["sequence"].tolist()
        return clean({"kind": kind, "label": label, "change": edit, "before": before, "after": after})

    def edit(self, loaded: Loaded, content_N: np.ndarray, q: int | None, kind, args: dict) -> dict:
        """The checked values of one edit, and its label; ServeError for a bad one."""
        m, n = loaded.cfg.task.m, loaded.cfg.task.n
        if kind not in INTERVENTIONS:
            raise ServeError(f"kind: {kind!r} is not one of {', '.join(INTERVENTIONS)}")

        def token(key):
            t = integer(args.get(key), key)
            if not 0 <= t < m:
                raise ServeError(f"{key}: {t} is outside 0..{m - 1} (m = {m})")
            return t

        if kind == "replace":
            at, t = args.get("at"), token("token")
            new_content, new_q = content_N.copy(), q
            if at == "query":
                if q is None:
                    raise ServeError("at: this task has no query")
                new_q, label = t, f"query {q} -> {t}"
            else:
                at = integer(at, "at")
                if not 0 <= at < n:
                    raise ServeError(f"at: {at} is outside 0..{n - 1} (the content positions)")
                label = f"token {at + 1} ({int(content_N[at])}) -> {t}"
                new_content[at] = t
            return {"sequence": new_content, "query": new_q, "label": label}
        if kind == "embedding":
            a, b = token("token"), token("toward")
            alpha = number(args.get("alpha"), "alpha", 0.0, 1.0)
            return {"token": a, "toward": b, "alpha": alpha,
                    "label": f"embedding of {a} moved toward {b}'s by alpha = {alpha:g}"}
        scale = number(args.get("scale"), "scale", 0.0, MAX_SCALE)
        if kind == "bos":
            if not loaded.bos:
                raise ServeError("bos: this model's task has no BOS token")
            renormalize = flag(args.get("renormalize", True), "renormalize")
            every = flag(args.get("every_position", False), "every_position")
            what = "removed" if scale == 0 else f"scaled by {scale:g}"
            label = (f"BOS attention {what}" + (", rows renormalized" if renormalize else "")
                     + (" at every position" if every else " at the read position"))
            return {"scale": scale, "renormalize": renormalize, "every_position": every, "label": label}
        if not self._has_query_key(loaded):
            raise ServeError(f"logits: this model (model.arch={loaded.cfg.model.arch}) has no query-key logits in "
                             f"its counting layer")
        return {"scale": scale, "label": f"query-key logits scaled by {scale:g}"}
