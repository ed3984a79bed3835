"""Tables 1–2 shape by shape at width 1.0, parameter counts, branches."""
import pytest
import torch

from mvbook.nets.crnn import CRNN1D, CRNN2D, AttentionPooling, MultiViewNet, layer_shapes, n_params

TABLE1 = [("conv1", (75, 64, 32)), ("pool1", (75, 32, 32)), ("conv2", (75, 32, 64)), ("pool2", (75, 16, 64)),
          ("conv3", (75, 16, 128)), ("pool3", (75, 8, 128)), ("conv4", (75, 8, 128)), ("pool4", (75, 4, 128)),
          ("conv5", (75, 4, 256)), ("pool5", (75, 2, 256)), ("conv6", (75, 2, 512)), ("pool6", (75, 1, 512)),
          ("rnn", (75, 512)), ("attention", (512,))]
TABLE2_TAIL = [("conv2", (65, 32, 64)), ("pool2", (65, 16, 64)), ("conv3", (65, 16, 128)), ("pool3", (65, 8, 128)),
               ("conv4", (65, 8, 128)), ("pool4", (65, 4, 128)), ("conv5", (65, 4, 256)), ("pool5", (65, 2, 256)),
               ("conv6", (65, 2, 512)), ("pool6", (65, 1, 512)), ("rnn", (65, 512)), ("attention", (512,))]


def test_table1_shapes():
    assert layer_shapes(CRNN2D(), torch.randn(2, 75, 64)) == TABLE1


def test_table1_cqt_length():
    shapes = dict(layer_shapes(CRNN2D(), torch.randn(2, 65, 64)))
    assert shapes["pool6"] == (65, 1, 512) and shapes["attention"] == (512,)


def test_table2_shapes_44k():
    got = layer_shapes(CRNN1D(sr=44100), torch.randn(2, 66650))
    head = [("conv01", (33294, 1, 32)), ("conv02", (16640, 1, 64)), ("pool02", (260, 64, 1)),
            ("conv1", (260, 64, 32)), ("pool1", (65, 32, 32))]
    assert got == head + TABLE2_TAIL


def test_table2_22k_halves_pool02():
    got = dict(layer_shapes(CRNN1D(sr=22050), torch.randn(2, 33330)))
    assert got["pool02"] == (259, 64, 1) and got["pool1"] == (64, 32, 32) and got["attention"] == (512,)


def test_branch_heads_and_outputs():
    net = MultiViewNet(50)
    x = {"mel": torch.randn(2, 75, 64), "gam": torch.randn(2, 75, 64), "cqt": torch.randn(2, 65, 64),
         "raw": torch.randn(2, 66650)}
    out = net.eval()(x)
    assert list(out) == ["mel", "gam", "cqt", "raw", "mv"]
    assert all(v.shape == (2, 50) for v in out.values())
    # branch head: fc 1024 → fc 1024 → classes ; ⊕ head: 2048 → 4096 → 4096 → classes
    assert [m.out_features for m in net.heads["mel"] if isinstance(m, torch.nn.Linear)] == [1024, 1024, 50]
    mv = [m for m in net.heads["mv"] if isinstance(m, torch.nn.Linear)]
    assert mv[0].in_features == 2048 and [m.out_features for m in mv] == [4096, 4096, 50]


def test_paper_parameter_count():
    net = MultiViewNet(50)
    total = n_params(net)
    assert 40e6 <= total <= 45e6
    # the ⊕ head alone: 2048·4096+4096 + 4096·4096+4096 + 4096·50+50
    assert n_params(net.heads["mv"]) == 2048 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 50 + 50
    assert total == sum(n_params(m) for m in net.subnets.values()) + sum(n_params(m) for m in net.heads.values())


def test_single_view_network_has_one_branch():
    net = MultiViewNet(10, views=("gam",), width=0.25)
    out = net(dict(gam=torch.randn(3, 75, 64)))
    assert list(out) == ["gam"] and out["gam"].shape == (3, 10)


def test_width_scales_channels():
    net = CRNN2D(width=0.25)
    assert dict(layer_shapes(net, torch.randn(2, 75, 64)))["pool6"] == (75, 1, 128)
    assert net.dim == 128


def test_unknown_view_is_rejected():
    with pytest.raises(ValueError, match="unknown views"):
        MultiViewNet(10, views=("mfcc",))


def test_attention_pooling_equations():
    torch.manual_seed(0)
    att = AttentionPooling(8, 4)
    H = torch.randn(3, 5, 8)
    alpha, beta = att.weights(H)
    assert torch.allclose(alpha.sum(1), torch.ones(3))
    assert ((beta > 0) & (beta < 1)).all()
    expected = torch.einsum("bt,bd,btd->bd", alpha, beta, H)
    assert torch.allclose(att(H), expected, atol=1e-6)
    # with no temporal evidence, α is uniform over the T steps
    with torch.no_grad():
        att.temporal[2].weight.zero_()
    alpha, _ = att.weights(H)
    assert torch.allclose(alpha, torch.full((3, 5), 0.2))


def test_subclass_hooks_and_registration_order():
    """A subclass's make_coder / add_view_modules / make_fusion_head are used, and its
    modules are registered subnets → add_view_modules' → heads (the state-dict order
    that checkpoints are written in)."""
    from mvbook.nets.cab import CABNet, ClassifierAttention
    from mvbook.nets.crnn import Classifier
    from mvbook.nets.fusionnet import CodingNet, FeatureCodingNet

    net = CodingNet(3, sr=22050, width=1 / 16, views=("mel", "raw"), raw_bands=4)
    assert all(isinstance(net.subnets[v], FeatureCodingNet) for v in ("mel", "raw"))
    assert set(net.centers) == {"mel", "raw"} and net.branches == ("mel", "raw", "mv")
    assert isinstance(net.heads["mv"], Classifier)
    keys = [k.split(".")[0] for k in net.state_dict()]
    assert {"subnets", "centers", "heads"} == set(keys)
    first = {name: keys.index(name) for name in ("subnets", "centers", "heads")}
    last = {name: len(keys) - 1 - keys[::-1].index(name) for name in first}
    assert last["subnets"] < first["centers"] and last["centers"] < first["heads"]
    assert list(dict(net.named_children())) == ["subnets", "centers", "heads"]

    cab = CABNet(3, sr=22050, width=1 / 16, views=("mel", "gam"))
    assert isinstance(cab.heads["mv"], ClassifierAttention)
    assert all(isinstance(m, Classifier) for v, m in cab.heads.items() if v != "mv")

    class Hooked(MultiViewNet):
        calls = []

        def make_coder(self, view, width, sr, raw_bands):
            self.calls.append(("coder", view, width, sr, raw_bands))
            return super().make_coder(view, width, sr, raw_bands)

        def add_view_modules(self, n_classes):
            self.calls.append(("modules", n_classes, tuple(self.subnets)))
            self.extra = torch.nn.Linear(1, 1)

        def make_fusion_head(self, dim, n_classes, width):
            self.calls.append(("fusion", dim, n_classes, width))
            return torch.nn.Linear(dim, n_classes)

    net = Hooked(5, sr=22050, width=0.25, views=("gam", "cqt"), raw_bands=8)
    assert Hooked.calls == [("coder", "gam", 0.25, 22050, 8), ("coder", "cqt", 0.25, 22050, 8),
                            ("modules", 5, ("gam", "cqt")), ("fusion", 256, 5, 0.25)]
    assert isinstance(net.heads["mv"], torch.nn.Linear)
    assert list(dict(net.named_children())) == ["subnets", "extra", "heads"]
    single = Hooked(5, views=("mel",), width=0.25)
    assert "mv" not in single.heads and Hooked.calls[-1][0] == "modules"   # no ⊕ branch: no fusion hook
