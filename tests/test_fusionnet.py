"""mvbook.nets.fusionnet: NetVLAD, self-attention and centre loss against by-hand
computations, the feature coding network and meta-CNN, and FusionNet end to
end (four smoke coder runs, then the meta-classifier) on synthetic fold 1."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mvbook.errors import DataError
from mvbook.nets import fusionnet as fn
from mvbook.nets.crnn import CRNN1D, CRNN2D, n_params
from mvbook.records import load_records, record_path
from mvbook.systems import dependencies, load_network
from mvbook.train import train

SMOKE_W = 1 / 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: at these tiny shapes a second one only adds
    synchronisation, and on a busy two-core machine (a niced test beside
    training jobs) waiting for it made this file ten times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_netvlad_by_hand():
    torch.manual_seed(0)
    B, N, D, K = 2, 6, 3, 4
    vlad = fn.NetVLAD(D, K).double()
    f = torch.randn(B, N, D, dtype=torch.float64)
    V = vlad(f).detach().numpy()
    W, b = vlad.assign.weight.detach().numpy(), vlad.assign.bias.detach().numpy()
    c = vlad.centers.detach().numpy()
    for n in range(B):
        F_ = f[n].numpy()
        a = np.zeros((N, K))
        for j in range(N):                                       # Eq. 4, one descriptor at a time
            e = np.exp([W[k] @ F_[j] + b[k] for k in range(K)])
            a[j] = e / e.sum()
        R = np.zeros((K, D))
        for k in range(K):                                       # Eq. 5: sum of weighted residuals
            for j in range(N):
                R[k] += a[j, k] * (F_[j] - c[k])
        R = R / np.linalg.norm(R, axis=1, keepdims=True)         # intra-normalisation
        R = R / np.linalg.norm(R)                                # L2 normalisation
        np.testing.assert_allclose(V[n], R, rtol=1e-10, atol=1e-12)
    assert V.shape == (B, K, D)
    np.testing.assert_allclose(np.linalg.norm(V, axis=2), 1 / np.sqrt(K), rtol=1e-10)


def test_self_attention_by_hand_and_zero_alpha_is_identity():
    torch.manual_seed(1)
    B, M, C, heads = 2, 5, 6, 3
    att = fn.SelfAttention(C, heads).double()
    X = torch.randn(B, M, C, dtype=torch.float64)
    assert torch.equal(att(X), X)                                # α starts at 0: Z = X (Eq. 10)
    with torch.no_grad():
        att.alpha.fill_(0.7)
    Z = att(X).detach().numpy()
    Wk, Wq, Wg = (m.weight.detach().numpy() for m in (att.w_k, att.w_q, att.w_g))
    h = C // heads
    for n in range(B):
        x = X[n].numpy()
        Y = np.zeros((M, C))
        for hd in range(heads):
            s = slice(hd * h, (hd + 1) * h)
            for i in range(M):
                phi = np.array([np.exp((Wk[s] @ x[i]) @ (Wq[s] @ x[j])) for j in range(M)])   # Eq. 9
                Y[i, s] = sum(phi[j] * (Wg[s] @ x[j]) for j in range(M)) / phi.sum()        # Eq. 6-8
        np.testing.assert_allclose(Z[n], x + 0.7 * Y, rtol=1e-10, atol=1e-12)             # Eq. 10
    with pytest.raises(ValueError):
        fn.SelfAttention(20, 3)


def test_center_loss_by_hand_and_its_gradient_pulls_centres_to_class_means():
    torch.manual_seed(2)
    n_classes, dim, B = 3, 4, 10
    loss_fn = fn.CenterLoss(n_classes, dim).double()
    with torch.no_grad():
        loss_fn.centers.normal_()
    z = torch.randn(B, dim, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 1, 1])           # class 2 absent
    c0 = loss_fn.centers.detach().clone()
    loss = loss_fn(z, y)
    by_hand = sum(0.5 * float(((z[i] - c0[y[i]]) ** 2).sum()) for i in range(B)) / B
    assert float(loss.detach()) == pytest.approx(by_hand, rel=1e-12)
    loss.backward()
    g = loss_fn.centers.grad
    for k in (0, 1):
        mean = z[y == k].mean(0)
        n_k = int((y == k).sum())
        torch.testing.assert_close(g[k], -(n_k / B) * (mean - c0[k]))   # along (class mean − centre)
        moved = c0[k] - 0.5 * g[k]                               # one gradient step
        assert torch.linalg.norm(moved - mean) < torch.linalg.norm(c0[k] - mean)
    assert torch.all(g[2] == 0)                                  # a class not in the batch stays put


@pytest.mark.parametrize("view, shape", [("mel", (3, 75, 64)), ("cqt", (3, 65, 64)), ("raw", (3, 33330))])
def test_feature_coding_net_shapes_and_every_parameter_is_used(view, shape):
    torch.manual_seed(3)
    net = fn.FeatureCodingNet(view, SMOKE_W, sr=22050, raw_bands=4)
    crnn = CRNN1D(SMOKE_W, 22050, 4) if view == "raw" else CRNN2D(SMOKE_W)
    ch = [crnn.__getattr__(f"conv{layer}")[0].out_channels for layer in range(2, 7)]
    assert net.dim == 32 and net.M == sum(ch) and net.K == 20 and net.taps == (2, 3, 4, 5, 6)
    # the CRNN's conv blocks, under the CRNN's names; no GRU, no attention pooling
    blocks = {k: v.shape for k, v in crnn.state_dict().items() if k.startswith(("conv", "pool"))}
    mine = {k: v.shape for k, v in net.state_dict().items() if k.startswith(("conv", "pool"))}
    assert mine == blocks
    assert not any(k.startswith(("rnn", "attention.temporal", "attention.spatial")) for k in net.state_dict())
    x = torch.randn(*shape)
    X = net.coding(x)
    assert X.shape == (3, net.M, 20)
    maps = net.levels(x)
    assert [m.shape[1] for m in maps] == ch
    with torch.no_grad():
        net.attention.alpha.fill_(0.5)                           # so that W_k, W_q, W_g get non-zero gradients
    z = net(x)
    assert z.shape == (3, 32) and torch.isfinite(z).all()
    (z * torch.randn_like(z)).sum().backward()
    no_grad = [k for k, p in net.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad}"
    for k in ("attention.w_k.weight", "attention.w_q.weight", "attention.w_g.weight", "vlad.0.centers",
              "vlad.4.assign.weight", "fc1.weight"):
        assert dict(net.named_parameters())[k].grad.abs().sum() > 0, k
    assert n_params(net) == sum(p.numel() for p in net.parameters())
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x[:1]), net(x[:1]))              # deterministic in eval mode


def test_meta_cnn_shapes_and_gradients():
    torch.manual_seed(4)
    meta = fn.MetaCNN(4 * 32, 8, SMOKE_W)
    assert meta.attention.heads == 2                             # 2 filters at width 1/16: 2 heads
    x = torch.randn(5, 128)
    out = meta(x)
    assert out.shape == (5, 8)
    out.sum().backward()
    assert all(p.grad is not None for p in meta.parameters())
    assert fn.MetaCNN(2048, 8, 1.0).attention.heads == 4
    with pytest.raises(ValueError):
        fn.MetaCNN(7, 8)


def test_multiview_net_with_fcn_coders_has_centres_per_view():
    net = fn.CodingNet(8, sr=22050, width=SMOKE_W, views=("mel", "raw"), raw_bands=4)
    x = {"mel": torch.randn(4, 75, 64), "raw": torch.randn(4, 33330)}
    y = torch.tensor([0, 1, 2, 3])
    logits, z = net(x, embeddings=True)
    assert set(logits) == {"mel", "raw", "mv"} and z["mel"].shape == (4, 32)
    by_hand = sum(0.5 * ((z[v] - net.centers[v].centers[y]) ** 2).sum(1).mean() for v in ("mel", "raw"))
    torch.testing.assert_close(net.center_loss(z, y), by_hand)


def test_train_meta_without_coders_names_what_is_missing(tmp_path):
    with pytest.raises(DataError) as e:
        train(dataset="synthetic", system="fusionnet", fold=2, preset="smoke", out=tmp_path, progress=False)
    msg = str(e.value)
    for dep in dependencies("fusionnet"):
        assert str(tmp_path / record_path("synthetic", "smoke", dep, 2, 0)) in msg
    assert "python -m mvbook grid --dataset synthetic --preset smoke --systems fcn_mel fcn_gam fcn_cqt fcn_raw" \
        in msg and "--folds 2" in msg
    assert not list(tmp_path.rglob("*.json"))


# --- end to end: four smoke coders, then the meta-classifier -----------------------------

class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def fusion(tmp_path_factory):
    """The four fcn_* smoke runs (one epoch) and fusionnet on synthetic fold 1."""
    out = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.mktemp("cache")
    kw = {"dataset": "synthetic", "fold": 1, "preset": "smoke", "seed": 0, "out": out, "cache_dir": cache,
          "progress": False, "epochs": 1}
    coders = {s: train(system=s, **kw) for s in dependencies("fusionnet")}

    def kill(info):
        raise Killed

    with pytest.raises(Killed):                                  # killed after its first evaluation
        train(system="fusionnet", callback=kill, **kw)
    killed_left_a_record = (out / record_path("synthetic", "smoke", "fusionnet", 1, 0)).exists()
    seen = []
    meta = train(system="fusionnet", callback=seen.append, **kw)    # resumes from the checkpoint
    return {"out": out, "coders": coders, "meta": meta, "kw": kw, "seen": seen,
            "killed_left_a_record": killed_left_a_record}


def test_fcn_coder_run(fusion):
    rec = fusion["coders"]["fcn_mel"]
    assert rec["config"]["coder"] == "fcn" and rec["config"]["views"] == ["mel"] and rec["main_branch"] == "mel"
    net = fn.CodingNet(8, sr=22050, width=SMOKE_W, views=("mel",), raw_bands=4)
    assert rec["config"]["n_params"] == n_params(net)            # the centres are counted too
    assert rec["config"]["steps"] >= 1 and rec["curves"]["step"][-1] == rec["config"]["steps"]
    assert 0.0 <= rec["system_accuracy"] <= 1.0
    assert (fusion["out"] / "checkpoints/synthetic/smoke/fcn_mel/fold1-seed0/best.pt").is_file()


def test_fusionnet_record(fusion):
    rec, out = fusion["meta"], fusion["out"]
    assert not fusion["killed_left_a_record"]
    on_disk = json.loads(Path(rec["path"]).read_text())
    assert Path(rec["path"]) == out / "synthetic/smoke/fusionnet/fold1-seed0.json"
    assert on_disk["schema"] == "mvbook.record/1" and on_disk["system"] == "fusionnet"
    assert on_disk["main_branch"] == "mv" and set(on_disk["accuracy"]) == {"mv"}
    assert 0.0 <= on_disk["system_accuracy"] == on_disk["accuracy"]["mv"] <= 1.0
    cfg = on_disk["config"]
    assert cfg["loss"] == "meta" and cfg["epochs"] == 1 and cfg["meta"]["n_features"] == 4 * 32
    assert cfg["meta"]["segments_per_clip"] == 3
    for v in ("mel", "gam", "cqt", "raw"):
        coder = fusion["coders"][f"fcn_{v}"]
        assert cfg["coders"][v]["record"] == coder["path"]
        assert cfg["coders"][v]["git_commit"] == coder["provenance"]["git_commit"]
    c = on_disk["curves"]
    n = len(c["step"])
    assert c["step"] == [0, cfg["steps"]] and c["weights"] == {"mv": [1.0] * n} and len(c["lr"]) == n
    for s in ("train", "val", "test"):
        assert len(c["loss"][s]["mv"]) == n and all(np.isfinite(c["loss"][s]["mv"]))
    assert set(c["accuracy"]["val"]) == {"mv", "self_ensemble"} == set(c["accuracy"]["test"])
    i = c["step"].index(on_disk["best"]["step"])
    assert c["accuracy"]["val"]["mv"][i] == max(c["accuracy"]["val"]["mv"]) == on_disk["best"]["val_accuracy"]
    assert on_disk["accuracy"]["mv"] == c["accuracy"]["test"]["mv"][i]
    P = np.array(on_disk["test"]["probs"]["mv"])
    labels = on_disk["test"]["labels"]
    assert P.shape == (len(labels), 8) and np.allclose(P.sum(1), 1, atol=1e-3)
    assert on_disk["accuracy"]["mv"] == pytest.approx(np.mean(P.argmax(1) == labels))
    assert on_disk["test"]["keys"] == fusion["coders"]["fcn_mel"]["test"]["keys"]    # the coders' test files
    assert {"git_commit", "device", "train_seconds", "wall_seconds"} <= set(on_disk["provenance"])
    assert [i["step"] for i in fusion["seen"]] == c["step"][1:]   # resumed after step 0: every later evaluation
    ckpt = out / "checkpoints/synthetic/smoke/fusionnet/fold1-seed0"
    assert {"checkpoint.pt", "best.pt", "features.pt"} <= {p.name for p in ckpt.iterdir()}
    stats = torch.load(ckpt / "features.pt", weights_only=False)
    assert stats["mean"].shape == stats["std"].shape == (cfg["meta"]["n_features"],)
    net = load_network(on_disk | {"path": rec["path"]})
    assert isinstance(net, fn.MetaCNN) and not net.training
    recs = load_records(out)
    assert sorted(r["system"] for r in recs) == sorted(["fusionnet", *dependencies("fusionnet")])


def test_fusionnet_record_plots(fusion):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mvbook.book import plots
    fig = plots.plot_curves(fusion["meta"])
    assert len(fig.axes) == 3
    plt.close(fig)


def _numbers(tree) -> list:
    """The numbers of a nested dict/list, in order."""
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in _numbers(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in _numbers(v)]
    return [tree] if isinstance(tree, (int, float)) else []


def test_fusionnet_same_seed_same_result(fusion):
    """A fresh run equals the killed-and-resumed one of the fixture."""
    again = train(system="fusionnet", fresh=True, **fusion["kw"])
    if torch.cuda.is_available():   # CUDA kernels (atomic adds in backward passes) may round differently
        got = _numbers([again["curves"], again["test"]])
        assert got == pytest.approx(_numbers([fusion["meta"]["curves"], fusion["meta"]["test"]]), rel=1e-5)
    else:                           # on CPU: bit-identical
        assert again["curves"] == fusion["meta"]["curves"] and again["test"] == fusion["meta"]["test"]


def test_crnn_meta_stacks_the_single_view_crnns_and_states_their_sum_rule(fusion):
    """crnn_meta: the meta-classifier on the paper's four CRNNs (smoke runs of
    mel … raw); its record names them and the accuracy of the mean of their
    test posteriors, recomputed here from their records."""
    kw = fusion["kw"]
    crnns = {s: train(system=s, **kw) for s in dependencies("crnn_meta")}
    assert tuple(crnns) == ("mel", "gam", "cqt", "raw")
    rec = train(system="crnn_meta", **kw)
    cfg = rec["config"]
    assert cfg["coder"] == "crnn" and cfg["loss"] == "meta" and rec["main_branch"] == "mv"
    assert cfg["meta"]["n_features"] == 3 * CRNN2D(SMOKE_W).dim + CRNN1D(SMOKE_W, 22050, 4).dim
    for v, r in crnns.items():
        assert cfg["coders"][v]["record"] == r["path"] and cfg["coders"][v]["system"] == v
    P = np.mean([np.asarray(r["test"]["probs"][v]) for v, r in crnns.items()], axis=0)
    labels = np.asarray(crnns["mel"]["test"]["labels"])
    assert cfg["sum_rule"]["accuracy"] == pytest.approx(np.mean(P.argmax(1) == labels))
    assert rec["test"]["keys"] == crnns["mel"]["test"]["keys"]


def test_crnn_meta_refuses_fcn_coders_in_place_of_crnns(fusion, tmp_path):
    """A coder record of the other kind (an fcn run where a CRNN is expected) is refused, naming the record."""
    kw = fusion["kw"] | {"out": tmp_path}
    for v in dependencies("crnn_meta"):
        src = fusion["out"] / record_path("synthetic", "smoke", f"fcn_{v}", 1, 0)
        dst = tmp_path / record_path("synthetic", "smoke", v, 1, 0)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
        ck = tmp_path / "checkpoints" / record_path("synthetic", "smoke", v, 1, 0).with_suffix("")
        ck.mkdir(parents=True)
        (ck / "best.pt").write_bytes(b"")
    with pytest.raises(DataError, match=r"mel/fold1-seed0.json: not a crnn run"):
        train(system="crnn_meta", **kw)
