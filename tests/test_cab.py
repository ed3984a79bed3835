"""CAB-CNN's classifier attention (mvbook.nets.cab)."""
import torch

from mvbook.nets.cab import CABNet, ClassifierAttention


def test_output_is_the_attention_weighted_mixture_of_the_classifiers():
    torch.manual_seed(0)
    cab = ClassifierAttention(12, 5, n_classifiers=7).double()
    a = torch.randn(4, 12, dtype=torch.double)
    alpha = cab.weights(a)
    c = torch.stack([torch.softmax(f(a), dim=1) for f in cab.classifiers], dim=1)   # (B, n, C)
    p = (alpha.unsqueeze(2) * c).sum(1)
    assert torch.allclose(alpha.sum(1), torch.ones(4, dtype=torch.double))
    assert torch.allclose(cab(a).exp(), p)
    assert torch.allclose(torch.softmax(cab(a), 1), p)       # log p works as logits


def test_paper_sizes_and_gradients_reach_every_classifier():
    torch.manual_seed(0)
    cab = ClassifierAttention(20, 3)
    assert len(cab.classifiers) == 40
    assert [m.out_features for m in cab.classifiers[0] if isinstance(m, torch.nn.Linear)] == [8, 4, 3]
    assert [m.out_features for m in cab.attention if isinstance(m, torch.nn.Linear)] == [160, 80, 40]
    torch.nn.functional.cross_entropy(cab(torch.randn(6, 20)), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert all(p.grad is not None for p in cab.parameters())
    # every classifier's output layer learns (its bias at least: with 8 and 4 ReLU units
    # a classifier can be born with all units dead, a property of the paper's design)
    assert all(f[-1].bias.grad.abs().sum() > 0 for f in cab.classifiers)
    assert sum(bool(f[-1].weight.grad.abs().sum() > 0) for f in cab.classifiers) >= 30
    assert all(m.weight.grad.abs().sum() > 0 for m in cab.attention if isinstance(m, torch.nn.Linear))


def test_multiview_net_with_a_cab_head():
    net = CABNet(4, sr=22050, width=1 / 16, raw_bands=4).eval()
    x = {"mel": torch.randn(2, 75, 64), "gam": torch.randn(2, 75, 64), "cqt": torch.randn(2, 65, 64),
         "raw": torch.randn(2, 33330)}
    out = net(x)
    assert isinstance(net.heads["mv"], ClassifierAttention)
    assert torch.allclose(out["mv"].exp().sum(1), torch.ones(2), atol=1e-5)
