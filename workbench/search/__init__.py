"""Search under a device budget: the space of recipe families (``space``), the search loop (``run``), what it
found (``result``) and where trials run (``executors``: in process or on Ray).
"""
