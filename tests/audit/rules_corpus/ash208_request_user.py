"""ASH208 lazy-request-user: reading request.user's attributes in an async Django view."""

from adrf.decorators import api_view
from adrf.views import APIView
from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View


async def profile(request):
    if not request.user.is_authenticated:  # error: ASH208:12
        return HttpResponse(status=401)
    return JsonResponse({"name": request.user.username})  # error: ASH208:34


async def annotated(req: HttpRequest):
    return HttpResponse(req.user.get_full_name())  # error: ASH208:25


class Dashboard(View):
    async def get(self, request):
        return HttpResponse(request.user.email)  # error: ASH208:29


class Settings(View):  # error: ASH306:1 (its sync head: as_view() refuses it)
    async def get(self, *args, **kwargs):
        if not self.request.user.is_staff:  # error: ASH208:16
            return HttpResponse(status=403)
        return HttpResponse(self.request.user.get_username())  # error: ASH208:29

    async def post(self, *args, **kwargs):
        user = await self.request.auser()  # ok: Django's async accessor
        return HttpResponse(user.email)

    def head(self, *args, **kwargs):
        return HttpResponse(self.request.user.email)  # ok: a sync method runs in a thread

    async def put(self, serializer):
        await sync_to_async(serializer.save)(owner=self.request.user)  # ok: passed on unread
        return HttpResponse()


async def test_with_a_factory_request(factory, user):
    request = factory.get("/")
    request.user = user  # the test stores a plain user: no middleware, nothing lazy
    return HttpResponse(request.user.username)  # ok: reads the stored user


async def the_async_way(request):
    user = await request.auser()  # ok: Django's async accessor
    return HttpResponse(user.username)  # ok: a loaded user


async def wrapped(request):
    name = await sync_to_async(lambda: request.user.username)()  # ok: runs in a thread
    return HttpResponse(name)


async def passed_on(request, Book):
    user = request.user  # ok: the lazy object is not loaded here
    return await Book.objects.filter(owner=user).afirst()  # ok: the ORM loads it in a thread


async def other_objects(request, order):
    return order.user.username  # ok: not a request


def sync_view(request):
    return HttpResponse(request.user.username)  # ok: a sync view runs in a thread


async def nested(request):
    def helper():
        return request.user.username  # ok: a sync closure; not reported (conservative)

    return await sync_to_async(helper)()


@api_view(["GET"])
async def drf_function_view(request):
    return JsonResponse({"name": request.user.username})  # ok: authenticated before the handler


class DrfView(APIView):
    async def get(self, request):
        return JsonResponse({"name": request.user.username})  # ok: authenticated by the view

    async def post(self, request):
        return JsonResponse({"email": self.request.user.email})  # ok: the same request


class IsOwner:
    # an adrf permission class: the view authenticated the request before
    async def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)  # ok

    async def has_object_permission(self, request, view, obj):
        return obj.owner_id == request.user.pk  # ok: the same authenticated user


class Audit:
    async def has_permission(self, request):  # no view: not a REST framework permission
        return request.user.is_staff  # error: ASH208:16
