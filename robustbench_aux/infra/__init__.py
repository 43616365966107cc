"""Infrastructure below the suite's vocabulary: nothing here names a corruption, a method or a run.

atomic (atomic writes), hashing (the file hasher), jsonio (the JSON object reader), paths (checked
path components), plaintext (one-line visible text), devices (``--device`` / ``--threads``),
versioning (the recorded code version), shipped (files inside the package). They import only
``errors`` and ``_version`` from the package, and each other downward (see docs/design.md).
"""
