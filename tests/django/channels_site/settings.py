"""The sample project's settings plus Channels, as the Channels tutorial sets them up."""

from mysite.settings import *  # noqa: F403
from mysite.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "channels"]
ASGI_APPLICATION = "channels_site.asgi.application"
