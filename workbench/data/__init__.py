"""Data: the user's own data sets (``read_data`` -> :class:`Dataset`, ``make_task_data``), named input arrays with
labels (``Split``), train / eval / calibration splits (``TaskData``), the bundled real data sets and deterministic
stratified splitting.
"""
