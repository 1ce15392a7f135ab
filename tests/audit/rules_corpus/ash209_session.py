"""ASH209 sync-session-access: the sync session API in an async Django view."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views import View


async def cart(request):
    items = request.session.get("cart", [])  # error: ASH209:13
    request.session["cart"] = [*items, "book"]  # error: ASH209:5
    if "coupon" in request.session:  # error: ASH209:20
        del request.session["coupon"]  # error: ASH209:13
    return HttpResponse(request.session["cart"])  # error: ASH209:25


async def logout_all(req: HttpRequest):
    req.session.flush()  # error: ASH209:5
    return HttpResponse()


async def the_async_way(request):
    items = await request.session.aget("cart", [])  # ok: Django 5.1's async session API
    await request.session.aset("cart", [*items, "book"])  # ok
    if await request.session.ahas_key("coupon"):  # ok
        await request.session.apop("coupon")  # ok
    request.session.modified = True  # ok: sets a flag, loads nothing
    return HttpResponse(request.session.session_key)  # ok: the key is known without a load


def sync_view(request):
    return HttpResponse(request.session.get("cart"))  # ok: a sync view runs in a thread


async def not_django(request, store):
    return store.session.get("cart")  # ok: not a request's session


class CartView(View):
    async def get(self, *args, **kwargs):
        if "cart" not in self.request.session:  # error: ASH209:26
            self.request.session["cart"] = []  # error: ASH209:13
        return HttpResponse(await self.request.session.aget("cart"))  # ok: async API


async def test_with_a_dict_session(factory):
    request = factory.get("/")
    request.session = {"cart": ["book"]}  # the test stores a plain dict
    return HttpResponse(request.session.get("cart"))  # ok: a dict, no session store


@login_required
async def members_cart(request):
    # login_required awaits request.auser() first, which loads the session
    return HttpResponse(request.session.get("cart"))  # ok: served from the loaded session


@login_required(login_url="/login/")
async def members_coupon(request):
    if "coupon" in request.session:  # ok: loaded by the decorator
        return HttpResponse(request.user.email)  # error: ASH208:29
    return HttpResponse()
