"""The four views of a clip and their segments (§3.1.2–3.1.3): from audio to the
arrays a network reads.

- :mod:`mvbook.views.framing`: frames, hops and segment lengths of each view
- :mod:`mvbook.views.features`: log-Mel, log-Gammatone, log-CQT and the raw waveform of a clip
- :mod:`mvbook.views.cache`, :mod:`mvbook.views.cachefile`: a dataset's views, extracted once
  and kept on disk (:func:`~mvbook.views.cache.load_views`)
- :mod:`mvbook.views.segments`: aligned ≈1.51 s segments of the four views, for training and test
"""

__all__: list[str] = []
