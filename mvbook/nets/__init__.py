"""The networks, as ``torch.nn`` modules: what a system trains, nothing about
data, training or results.

- :mod:`mvbook.nets.crnn`: the paper's 2D and 1D CRNNs and the multi-view network (Tables 1–2, Fig. 1)
- :mod:`mvbook.nets.fusionnet`: FusionNet's feature coding networks and meta-classifier (a comparison)
- :mod:`mvbook.nets.cab`: CAB-CNN's classifier attention, a ⊕ branch (a comparison)
- :mod:`mvbook.nets.bigru`, :mod:`mvbook.nets.fastpaths`, :mod:`mvbook.nets.pairpool`,
  :mod:`mvbook.nets.dropout`: the fast CPU paths of the recurrent layer, the pooling and the dropout
  that the CRNNs run on (each checked against its plain ``torch`` form)
"""

__all__: list[str] = []
