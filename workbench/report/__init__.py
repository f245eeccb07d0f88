"""Reports: the papermill report notebook (``notebook``, template in ``templates/``), its section builders
(``sections``, ``search_section``) and the Altair chart specs (``charts``).
"""
