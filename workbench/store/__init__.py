"""The run store: every candidate in SQLite (``runstore``), and the ``Candidate`` record itself (``candidate``)."""
