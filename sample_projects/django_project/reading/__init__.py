"""Reading notes on the shelf's books, written with asgishift's async views.

A list/detail/create flow on ``AsyncListView``/``AsyncDetailView``/
``AsyncCreateView``, a page quoting an external HTTP API through the
``httpx.AsyncClient`` a lifespan hook opens at startup, and a report built in
one transaction with ``aatomic``.
"""
