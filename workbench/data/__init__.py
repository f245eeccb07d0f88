"""Data: named input arrays with labels (``Split``), train / eval / calibration splits (``TaskData``), the bundled
real data sets (scikit-learn digits, BBC News) and deterministic stratified splitting.
"""
