"""ASH205 transaction-atomic-in-async."""

from django.db import transaction


async def transfer(a, b):
    with transaction.atomic():  # error: ASH205:10
        a.pay(b)


@transaction.atomic  # error: ASH205:2
async def decorated(a, b):
    return a, b


def make_atomic(view):
    return transaction.atomic(using="default")(view)  # ok: only wraps a view
