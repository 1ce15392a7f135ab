"""``asgishift audit``: a static analyser for blocking calls reachable from async code.

The engine lives in :mod:`asgishift.audit.engine`, the rule catalogue in
:mod:`asgishift.audit.rules` and the shared data model in
:mod:`asgishift.audit._model`.
"""
