"""Everything that exists only for the book's chapters: figures, tables as HTML,
the sentences that state the findings, and the replays of recorded runs. No
module outside ``mvbook.book`` imports it (``tests/test_architecture.py``), so
the library trains, tests and reports without it.

- :mod:`mvbook.book.chapters`: what every chapter does first (paths, styles, run lookups)
- :mod:`mvbook.book.plots`, :mod:`mvbook.book.plots_runs`, :mod:`mvbook.book.plots_claims`: the figures
- :mod:`mvbook.book.report`: Table 3 and the other tables as pages show them
- :mod:`mvbook.book.summary`, :mod:`mvbook.book.findings`: the sentences of *What was found* and *Results*
- :mod:`mvbook.book.replay`: Algorithm 1 replayed from a record's curves, for the blending tables
- :mod:`mvbook.book.classes`: per-class accuracy, confusions and what each view adds class by class
"""

__all__: list[str] = []
