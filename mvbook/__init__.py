"""mvbook: the library behind the companion book to Phan et al., "Multi-view
Audio and Music Classification" (ICASSP 2021).

Modules, by concern: ``data`` (datasets and splits) → ``features`` (the four
views) → ``models`` (CRNNs, multi-view network) → ``blending`` (Algorithm 1)
→ ``ensemble`` (Eq. 6–7) → ``train`` / ``evaluate`` → ``results``.
"""

import warnings

# Chapters report progress in plain lines, not widgets: keep tqdm.auto from
# warning, when a module imports it, that ipywidgets is missing.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
