"""counting-inspect NAME --serve (counting.serve): the debugger's API against counting.inspect's
own numbers for a tiny trained cohort (every view, every intervention), its refusals (paths
out of the results folder) and one-line errors, the command that retrains a model whose
parameters git does not hold; and the page itself in headless Chromium (Playwright), which
is skipped, with the reason, where no browser or no Playwright is installed."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytestmark = pytest.mark.slow  # the whole file: its module fixture trains two models (16 s of the fast tier; issue 32)
from starlette.testclient import TestClient
from tiny import tiny

from counting.serve.app import create_app
from counting.serve.debugger import Debugger, softmax

ROOT = Path(__file__).parents[1]
NAME = "quick"  # the tiny cohort is filed as the README's experiment: its retrain command composes quick.yaml
M_VALUES = (4, 12)  # d = 8: one model below d = m, one above
N = 6
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny QC models (d = 8, m = 4 and 12, n = 6, 60 steps) with their families.json."""
    from counting.evaluation.evaluate import families_experiment
    from counting.sweep.runner import execute_many

    root = tmp_path_factory.mktemp("serve")
    cfgs = [tiny(task={"m": m, "n": N, "eval_size": 64}, train={"steps": 60, "eval_every": 60},
                 results_dir=str(root), experiment=NAME) for m in M_VALUES]
    report = execute_many(cfgs, show_progress=False)
    assert not report.failed
    families_experiment(root, NAME, 64, 0, log=lambda line: None)
    return root, {cfg.task.m: cfg for cfg in cfgs}


@pytest.fixture(scope="module")
def client(trained):
    root, _ = trained
    return TestClient(create_app(Debugger(root, NAME)))


class Library:
    """The model as counting.inspect reads it, loaded as the debugger loads it (the OOD
    evaluator, the embedding padded to the experiment's largest m)."""

    def __init__(self, root, cfg, vocab=max(M_VALUES)):
        from counting.evaluation.evaluate import Evaluator
        from counting.sweep.runner import folder_of
        from counting.tasks import NUM_SPECIAL

        self.cfg, self.folder = cfg, folder_of(cfg)
        evaluator = Evaluator(vocab + NUM_SPECIAL)
        self.graphdef, self.params = evaluator.load(self.folder, cfg)
        self.task = evaluator.task(cfg.task)

    def embedding(self):
        from flax import nnx

        return np.asarray(nnx.to_pure_dict(self.params)["embed"]["embedding"], np.float64)

    def batch(self, content, q):
        import jax.numpy as jnp

        return self.task.batch_of(jnp.asarray([content], jnp.int32), None if q is None else jnp.asarray([q], jnp.int32))

    def trace(self, content, q, state=None):
        from counting.inspect.trace import trace

        return trace(self.graphdef, self.params if state is None else state, self.task, self.batch(content, q), 1)

    def own_logits(self, content, q):
        from flax import nnx

        net = nnx.merge(self.graphdef, self.params)
        return np.asarray(net(self.batch(content, q).tokens_BxT, self.task.answer_positions))[0, 0]

    def edit(self, content, q, datt):
        from counting.inspect.interventions import edit_attention

        tokens = np.asarray(self.batch(content, q).tokens_BxT)
        return edit_attention(self.graphdef, self.params, tokens, datt, self.task.answer_positions)


def close(a, b, tol=1e-9):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol)


def hash_of(trained, m):
    return trained[1][m].hash()


def sequence(m, seed=0):
    rng = np.random.default_rng(seed)
    content = rng.integers(0, m, N).tolist()
    return content, int(content[0])


def post(client, path, **body):
    return client.post(path, json={"experiment": NAME, **body})


# --- the list, the views, the interventions: the library's numbers -----------------------


def test_model_list_is_the_store_and_the_families(client, trained):
    from counting.store import read_record
    from counting.store.aggregate import row_of

    data = client.get("/api/models").json()
    assert data["experiment"] == NAME and data["note"] is None
    by_hash = {r["hash"]: r for r in data["models"]}
    assert set(by_hash) == {hash_of(trained, m) for m in M_VALUES}
    from counting.sweep.runner import folder_of

    for cfg in trained[1].values():
        row = row_of(read_record(folder_of(cfg)), folder_of(cfg))
        shown = by_hash[cfg.hash()]
        for key in ("d", "m", "n", "seed", "lr", "weight_decay", "accuracy", "worst"):
            assert shown[key] == row[key], key
        assert shown["families"] == {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("family.")}
        assert shown["families"] and shown["params"] and shown["missing"] is None
    assert NAME in client.get("/api/experiments").json()["experiments"]
    assert "<svg" in client.get("/").text and "http" not in re.sub(r"http://www\.w3\.org/2000/svg", "",
                                                                   client.get("/").text)  # nothing from a network


def test_every_view_is_the_librarys(client, trained):
    from counting.inspect.interventions import set_key_share
    from counting.inspect.trace import analysed_positions

    root, cfgs = trained
    for m in M_VALUES:
        lib, (content, q) = Library(root, cfgs[m]), sequence(m, m)
        v = post(client, "/api/views", model=hash_of(trained, m), sequence=content, query=q).json()
        tr = lib.trace(content, q)
        logits = tr.logits_BxRxC[0, 0]
        close(v["prediction"]["probs"], softmax(logits))
        assert v["prediction"]["count"] == int(np.argmax(logits)) == int(np.argmax(lib.own_logits(content, q)))
        assert v["prediction"]["true"] == content.count(q)
        a = analysed_positions(lib.task).index(lib.task.answer_positions[0])
        close(v["attention"]["weights"], tr.att_BxHxAxT[0, :, a])
        assert v["attention"]["bos"] == [True] + [False] * (len(content) + 1)
        assert v["attention"]["match"] == tr.is_match_BxAxT[0, a].tolist()
        from counting.tasks import BOS_ID, NUM_SPECIAL

        table = lib.embedding()
        E = np.concatenate([table[NUM_SPECIAL:NUM_SPECIAL + m], table[BOS_ID][None]])
        resid = tr.resid_BxAxD[0, a]
        close(v["embedding"]["projection"], E @ resid / np.linalg.norm(E, axis=1))
        assert v["embedding"]["tokens"] == [str(t) for t in range(m)] + ["BOS"] and v["embedding"]["query"] == q
        # the readout curve: the BOS share set by interventions.set_key_share, run by edit_attention
        r = v["readout"]
        own = lib.edit(content, q, np.zeros((1, 1, N + 2, N + 2)))
        G = len(r["share"])
        rows = np.arange(N + 2) == N + 1
        datt = set_key_share(np.repeat(own.att_BxHxTxT, G, 0), np.arange(N + 2) == 0, np.asarray(r["share"]), rows)
        from counting.inspect.interventions import edit_attention

        tokens = np.repeat(np.asarray(lib.batch(content, q).tokens_BxT), G, 0)
        curve = edit_attention(lib.graphdef, lib.params, tokens, datt, lib.task.answer_positions).logits_BxRxC[:, 0]
        assert r["count"] == curve.argmax(1).tolist()
        close(r["expected"], [softmax(c) @ np.arange(len(c)) for c in curve])
        close(r["current"], tr.att_BxHxAxT[0, 0, a, 0])
        assert r["keys"] == "BOS" and r["law"][0]["share"] == pytest.approx(1.0)  # c = 0: all on BOS


def test_every_intervention_is_interventions_pys(client, trained):
    from counting.inspect import interventions as iv
    from counting.tasks import NUM_SPECIAL

    root, cfgs = trained
    m = 12
    lib, (content, q) = Library(root, cfgs[m]), sequence(m, 3)
    base = {"model": hash_of(trained, m), "sequence": content, "query": q}
    before = lib.trace(content, q)

    def check(r, after_logits, after_att=None):
        close(r["before"]["prediction"]["probs"], softmax(before.logits_BxRxC[0, 0]))
        close(r["after"]["prediction"]["probs"], softmax(after_logits))
        assert r["after"]["prediction"]["count"] == int(np.argmax(after_logits))
        if after_att is not None:
            close(r["after"]["attention"]["weights"], after_att)

    changed = list(content)
    changed[2] = (content[2] + 1) % m
    r = post(client, "/api/intervene", **base, kind="replace", at=2, token=changed[2]).json()
    tr = lib.trace(changed, q)
    check(r, tr.logits_BxRxC[0, 0], tr.att_BxHxAxT[0, :, 0])
    r = post(client, "/api/intervene", **base, kind="replace", at="query", token=(q + 1) % m).json()
    check(r, lib.trace(content, (q + 1) % m).logits_BxRxC[0, 0])
    for alpha in (0.0, 0.5, 1.0):
        b = (q + 1) % m
        r = post(client, "/api/intervene", **base, kind="embedding", token=q, toward=b, alpha=alpha).json()
        state = iv.mix_embeddings(lib.graphdef, lib.params, q + NUM_SPECIAL, b + NUM_SPECIAL, alpha)
        tr = lib.trace(content, q, state)
        check(r, tr.logits_BxRxC[0, 0], tr.att_BxHxAxT[0, :, 0])
    own = lib.edit(content, q, np.zeros((1, 1, N + 2, N + 2)))
    rows, bos = np.arange(N + 2) == N + 1, np.arange(N + 2) == 0
    for scale, renormalize, every in ((0.0, True, False), (2.0, True, True), (0.5, False, False)):
        r = post(client, "/api/intervene", **base, kind="bos", scale=scale, renormalize=renormalize,
                 every_position=every).json()
        datt = iv.reweight_keys(own.att_BxHxTxT, bos, scale, None if every else rows, renormalize)
        edited = lib.edit(content, q, datt)
        check(r, edited.logits_BxRxC[0, 0], edited.att_BxHxTxT[0, :, N + 1])
        if scale == 0.0:
            assert abs(r["after"]["attention"]["weights"][0][0]) < 1e-6  # float32: att + datt
            close(np.sum(r["after"]["attention"]["weights"][0]), 1.0, 1e-6)
    for scale in (0.0, 1.0, 3.0):
        r = post(client, "/api/intervene", **base, kind="logits", scale=scale).json()
        tr = lib.trace(content, q, iv.scale_logits(lib.graphdef, lib.params, scale))
        check(r, tr.logits_BxRxC[0, 0], tr.att_BxHxAxT[0, :, 0])
        if scale == 0.0:  # no logits: uniform over the keys
            close(r["after"]["attention"]["weights"][0], np.full(N + 2, 1 / (N + 2)), 1e-6)
        if scale == 1.0:
            assert r["after"]["prediction"] == r["before"]["prediction"]


def test_draws_are_the_families_sequences(client, trained):
    from counting.tasks.families import family_content

    root, cfgs = trained
    m = 12
    lib = Library(root, cfgs[m])
    info = client.get(f"/api/model?model={hash_of(trained, m)}").json()
    assert info["n"] == N and info["m"] == m and info["bos"] and "aligned" in info["families"]
    E = lib.embedding()[2:2 + m]
    families = family_content(cfgs[m].task, E, 64, 0)  # what families.json was evaluated on
    for family in info["families"]:
        d = post(client, "/api/draw", model=hash_of(trained, m), family=family, seed=1).json()
        assert d["sequence"] == families[family].x_BxN[d["row"]].tolist() and d["query"] == families[family].q_B[d["row"]]
    pair = info["most_aligned"]
    d = post(client, "/api/draw", model=hash_of(trained, m), family="aligned", seed=2, most_aligned=True).json()
    assert set(d["sequence"]) == {pair["a"], pair["b"]}



def save_untrained(root, experiment: str, cfg_dict: dict):
    """A finished-looking model folder of untrained parameters (no training needed)."""
    import json

    from flax import nnx

    from counting.config import RunConfig
    from counting.models.registry import model_class
    from counting.store.record import save_params
    from counting.tasks import make_task

    cfg = RunConfig.from_dict({**cfg_dict, "experiment": experiment, "results_dir": str(root)})
    spec = make_task(cfg.task)
    model = model_class(cfg.model)(cfg.model, spec.vocab_size(), spec.length, spec.num_classes, nnx.Rngs(params=0))
    folder = root / experiment / "runs" / cfg.hash()
    folder.mkdir(parents=True)
    save_params(folder, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    (folder / "record.json").write_text(json.dumps({"config": cfg.to_dict(), "status": "complete", "hash": cfg.hash(),
                                                    "steps": 0, "metrics": {"accuracy": 0.1}}))
    return cfg


def test_histogram_task_reads_the_chosen_position_and_says_what_does_not_apply(tmp_path):
    """The histogram task (an answer at every content position; two heads, two layers, a
    causal mask), and a Behrens et al. model without BOS or query-key logits."""
    from counting.inspect.trace import analysed_positions

    hist = save_untrained(tmp_path, "hist", {"task": {"name": "histogram", "m": 5, "n": 6, "eval_size": 64},
                                             "model": {"d": 8, "w": 16, "H": 2, "L": 2, "causal": True}})
    peer = save_untrained(tmp_path, "hist", {"task": {"name": "histogram", "m": 5, "n": 6, "eval_size": 64,
                                                      "bos": False},
                                             "model": {"arch": "linear", "d": 8, "w": 16, "pos": "none",
                                                       "norm": "none"}})
    client = TestClient(create_app(Debugger(tmp_path, "hist")))
    content = [0, 3, 3, 1, 3, 4]
    for cfg in (hist, peer):
        lib = Library(tmp_path, cfg, vocab=5)
        for j in (1, 5):
            v = client.post("/api/views", json={"model": cfg.hash(), "sequence": content, "position": j}).json()
            tr = lib.trace(content, None)
            p = lib.task.content_slice().start + j
            a, r = analysed_positions(lib.task).index(p), lib.task.answer_positions.index(p)
            close(v["prediction"]["probs"], softmax(tr.logits_BxRxC[0, r]))
            assert v["prediction"]["true"] == content.count(content[j]) and v["position"] == p
            close(v["attention"]["weights"], tr.att_BxHxAxT[0, :, a])
            assert len(v["attention"]["weights"]) == cfg.model.H
            assert v["readout"]["keys"] == ("BOS" if cfg.task.bos else "matches")
    body = {"model": peer.hash(), "sequence": content, "position": 2}
    r = client.post("/api/intervene", json={**body, "kind": "bos", "scale": 0})
    assert r.status_code == 400 and "no BOS token" in r.json()["error"]
    r = client.post("/api/intervene", json={**body, "kind": "logits", "scale": 0})
    assert r.status_code == 400 and "no query-key logits" in r.json()["error"]
    r = client.post("/api/views", json={**body, "position": 6})
    assert r.status_code == 400 and "position: 6 is outside 0..5" in r.json()["error"]

# --- bad input, refusals, missing parameters ------------------------------------------------


def test_bad_input_is_a_one_line_json_error(client, trained):
    h = hash_of(trained, 4)
    good, q = sequence(4)
    cases = [
        (dict(sequence=[*good[:-1], 4], query=q), 400, "outside 0..3"),
        (dict(sequence=[*good, 0], query=q), 400, f"longer than n = {N}"),
        (dict(sequence=good[:-1], query=q), 400, f"exactly n = {N}"),
        (dict(sequence=[*good[:-1], "x"], query=q), 400, "not an integer"),
        (dict(sequence=[*good[:-1], 1.5], query=q), 400, "not an integer"),
        (dict(sequence=[*good[:-1], True], query=q), 400, "not an integer"),
        (dict(sequence="1 2 3", query=q), 400, "a list of integers"),
        (dict(sequence=good, query=7), 400, "query: 7 is outside"),
        (dict(sequence=good), 400, "needs a query"),
        (dict(sequence=good, query=q, code="__import__('os')"), 400, "unknown field"),
    ]
    for body, status, text in cases:
        r = post(client, "/api/views", model=h, **body)
        assert r.status_code == status and text in r.json()["error"], (body, r.json())
    ivs = [(dict(kind="melt"), "kind"), (dict(kind="embedding", token=0, toward=1, alpha=1.5), "alpha"),
           (dict(kind="bos", scale=-1), "scale"), (dict(kind="bos", scale="0"), "expected a number"),
           (dict(kind="replace", at=9, token=0), "at: 9"), (dict(kind="replace", at=0, token=4), "outside 0..3")]
    for body, text in ivs:
        r = post(client, "/api/intervene", model=h, sequence=good, query=q, **body)
        assert r.status_code == 400 and text in r.json()["error"], (body, r.json())
    r = client.post("/api/views", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("request: not JSON")
    r = post(client, "/api/views", model="0123456789abcdef", sequence=good, query=q)
    assert r.status_code == 404 and "no finished model" in r.json()["error"]
    assert client.get("/nothing").status_code == 404 and client.get("/api/views").status_code == 405
    for r in (client.get("/nothing"), client.get("/api/views")):
        assert set(r.json()) == {"error"}


def test_paths_out_of_the_results_folder_are_refused(client, trained, tmp_path):
    root = trained[0]
    outside = tmp_path / "outside" / NAME
    shutil.copytree(root / NAME / "runs", outside / "runs")
    link = root / "elsewhere"
    link.symlink_to(outside, target_is_directory=True)
    fake = "f" * 16
    (root / NAME / "runs" / fake).symlink_to(outside / "runs" / hash_of(trained, 4), target_is_directory=True)
    try:
        for experiment in ("../outside", str(outside), "a/b", "..", "elsewhere"):
            r = client.get("/api/models", params={"experiment": experiment})
            assert r.status_code == 400 and "refused" in r.json()["error"], (experiment, r.json())
        for model in ("../../x", "/etc/passwd", fake):
            r = client.get("/api/model", params={"model": model})
            assert r.status_code in (400, 404), (model, r.json())
            r = post(client, "/api/views", model=model, sequence=[0] * N, query=0)
            assert r.status_code in (400, 404) and "\n" not in r.json()["error"]
        assert fake not in {m["hash"] for m in client.get("/api/models").json()["models"]}  # a run linking out
        assert "elsewhere" not in client.get("/api/experiments").json()["experiments"]
    finally:
        link.unlink()
        (root / NAME / "runs" / fake).unlink()


def test_missing_parameters_say_how_to_retrain_and_the_command_does(trained, tmp_path):
    from counting.experiment import plan_experiment
    from counting.store.aggregate import aggregate

    root = trained[0]
    aggregate(root, NAME)
    committed = tmp_path / "committed"
    (committed / NAME).mkdir(parents=True)
    shutil.copy(root / NAME / "table.csv", committed / NAME / "table.csv")  # a committed folder: no runs/
    client = TestClient(create_app(Debugger(committed, NAME)))
    data = client.get("/api/models").json()
    assert len(data["models"]) == 2 and not any(m["params"] for m in data["models"]) and "retrains" in data["note"]
    h = hash_of(trained, 12)
    for r in (client.get(f"/api/model?model={h}"), post(client, "/api/views", model=h, sequence=[0] * N, query=0)):
        line = r.json()["error"]
        assert r.status_code == 404 and "\n" not in line and "no saved parameters" in line
    command = shlex.split(line.split("retrain it: ", 1)[1])
    assert command[:3] == ["counting-train", "-m", f"experiment={NAME}"] and command[3] == f"results_dir={committed}"
    plan = plan_experiment(NAME, command[4:], tmp_path / "retrain")
    assert h in plan.hashes  # the command trains exactly this model (and the folder's name)
    # a run folder whose params/ are gone: the same line, from its record
    gone = tmp_path / "gone"
    shutil.copytree(root / NAME, gone / NAME, symlinks=True)
    shutil.rmtree(gone / NAME / "runs" / h / "params")
    r = TestClient(create_app(Debugger(gone, NAME))).get(f"/api/model?model={h}")
    assert r.status_code == 404 and "params/ missing" in r.json()["error"] and "counting-train -m" in r.json()["error"]


def test_the_command_line(trained, tmp_path, capsys):
    from counting.cli.inspect import main
    from counting.serve import app

    with pytest.raises(SystemExit) as exit_:
        main(["nothing", "--results-dir", str(tmp_path), "--serve"])
    assert exit_.value.code == 2 and "holds no runs/" in capsys.readouterr().err.strip()
    lines = []
    stop = lambda url, server: setattr(server, "should_exit", True)
    app.serve(trained[0], NAME, "0.0.0.0", 0, say=lines.append, ready=stop)
    assert lines[0].startswith("warning: listening on 0.0.0.0") and re.search(r"http://0\.0\.0\.0:\d+/", lines[1])
    lines.clear()
    app.serve(trained[0], NAME, say=lines.append, ready=stop)
    assert len(lines) == 1 and re.search(r"at http://127\.0\.0\.1:\d+/", lines[0])  # loopback: no warning
    hosts = TestClient(create_app(Debugger(trained[0], NAME), ["127.0.0.1", "localhost"]), base_url="http://evil.test")
    assert hosts.get("/api/models").status_code == 400  # a rebound name is not served


# --- the page, in a real browser ----------------------------------------------------------


def browser():
    """(sync_playwright, why not): Playwright and a Chromium to drive, or the reason to skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "Playwright is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return None, f"no browser at {CHROMIUM} (apt-get install -y chromium)"
    return sync_playwright, ""


def test_the_page_in_headless_chromium(trained, tmp_path):
    sync_playwright, why = browser()
    if sync_playwright is None:
        if os.environ.get("CI"):  # .ci/run installs Chromium and the test extra Playwright: a skip there is a failure
            pytest.fail(why)
        pytest.skip(why)
    root, cfgs = trained
    # the command line itself, from the results folder's parent (the page then names it by its
    # stable folder name: the screenshot does not change from run to run)
    server = subprocess.Popen([sys.executable, "-m", "counting.cli.inspect", NAME, "--serve", "--results-dir",
                               root.name], cwd=root.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ, "PYTHONUNBUFFERED": "1",
                                              "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        assert url, f"the server did not start (exit {server.poll()})"
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                drive(chromium.new_page(viewport={"width": 1280, "height": 1250}), url, root, cfgs)
            finally:
                chromium.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


def drive(page, url, root, cfgs):
    from counting.inspect import interventions as iv
    from counting.tasks import NUM_SPECIAL

    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    start = time.time()
    page.goto(url)
    page.wait_for_selector('body[data-views="1"]', timeout=60_000)
    print(f"page: the first model's views {time.time() - start:.2f} s after the request")
    m = 12
    lib, h = Library(root, cfgs[m]), cfgs[m].hash()
    page.click(f'tr[data-hash="{h}"]')
    page.wait_for_selector('body[data-views="2"]')
    content, q = sequence(m, 5)
    page.fill("#sequence", " ".join(map(str, content)))
    page.fill("#query", str(q))
    page.click("#run")
    page.wait_for_selector('body[data-views="3"]')
    tr = lib.trace(content, q)
    probs = softmax(tr.logits_BxRxC[0, 0])
    assert page.inner_text("#pred-count") == str(int(np.argmax(probs)))
    assert page.inner_text("#true-count") == str(content.count(q))
    shown = page.eval_on_selector_all('#probs rect[data-series="p"]', "rs => rs.map(r => Number(r.dataset.v))")
    close(shown, probs)
    shown = page.eval_on_selector_all('#attention rect[data-series="weight"]', "rs => rs.map(r => Number(r.dataset.v))")
    close(shown, tr.att_BxHxAxT[0, 0, 0])
    labels = page.eval_on_selector_all("#attention text", "ts => ts.map(t => t.textContent)")
    assert "BOS" in labels and f"q{q}" in labels  # BOS and the query marked

    done = [0]

    def after_each(action):
        action()
        done[0] += 1
        page.wait_for_selector(f'body[data-iv="{done[0]}"]')
        box = page.query_selector("#iv-result")
        after = page.eval_on_selector_all('#iv-probs rect[data-series="after"]',
                                          "rs => rs.map(r => Number(r.dataset.v))")
        return int(box.get_attribute("data-before")), int(box.get_attribute("data-after")), np.array(after)

    def expect(result, logits):
        before, after, shown = result
        assert before == int(np.argmax(probs)) and after == int(np.argmax(logits))
        close(shown, softmax(logits))

    def slide(selector, value):
        page.eval_on_selector(selector, "(e, v) => { e.value = v; e.dispatchEvent(new Event('change')); }", str(value))

    changed = list(content)
    changed[0] = (content[0] + 1) % m
    page.select_option("#rep-at", "0")
    page.fill("#rep-token", str(changed[0]))
    expect(after_each(lambda: page.click("#rep-apply")), lib.trace(changed, q).logits_BxRxC[0, 0])
    b = (q + 1) % m
    page.fill("#emb-a", str(q))
    page.fill("#emb-b", str(b))
    state = iv.mix_embeddings(lib.graphdef, lib.params, q + NUM_SPECIAL, b + NUM_SPECIAL, 1.0)
    expect(after_each(lambda: slide("#emb-alpha", 1)), lib.trace(content, q, state).logits_BxRxC[0, 0])
    state = iv.scale_logits(lib.graphdef, lib.params, 0.0)
    expect(after_each(lambda: slide("#qk-scale", 0)), lib.trace(content, q, state).logits_BxRxC[0, 0])
    own = lib.edit(content, q, np.zeros((1, 1, N + 2, N + 2)))
    datt = iv.reweight_keys(own.att_BxHxTxT, np.arange(N + 2) == 0, 0.0, np.arange(N + 2) == N + 1)
    expect(after_each(lambda: page.click("#bos-remove")), lib.edit(content, q, datt).logits_BxRxC[0, 0])
    assert "BOS attention removed" in page.inner_text("#iv-label")
    assets = ROOT / "docs" / "assets"
    assets.mkdir(exist_ok=True)
    page.screenshot(path=str(assets / "debugger.png"), full_page=True)
    assert page.inner_text("#error") == "" and errors == [], errors
    page.fill("#sequence", " ".join(map(str, [*content[:-1], m + 3])))
    page.click("#run")
    page.wait_for_selector("#error:not(:empty)")  # a selector: the page's CSP forbids eval'd strings
    assert page.inner_text("#error") == f"sequence: token {N} is {m + 3}, outside 0..{m - 1} (m = {m})"
    assert all("status of 400" in e for e in errors), errors  # the browser logs the refused request only

