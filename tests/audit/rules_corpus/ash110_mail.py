"""ASH110 blocking-email: Django's mail API and smtplib talk to the mail server."""

import asyncio
import smtplib

from asgiref.sync import sync_to_async
from django.core import mail
from django.core.mail import (
    EmailMessage,
    EmailMultiAlternatives,
    get_connection,
    mail_admins,
    mail_managers,
    send_mail,
    send_mass_mail,
)


async def contact(request):
    send_mail("Hi", "Body", "from@example.com", ["to@example.com"])  # error: ASH110:5
    mail.send_mail("Hi", "Body", "from@example.com", ["to@example.com"])  # error: ASH110:5
    send_mass_mail((("Hi", "Body", "from@example.com", ["to@example.com"]),))  # error: ASH110:5
    mail_admins("Down", "The site is down")  # error: ASH110:5
    mail_managers("Order", "New order")  # error: ASH110:5


async def newsletter(recipients):
    message = EmailMessage("News", "Body", to=recipients)
    message.send()  # error: ASH110:5
    html = EmailMultiAlternatives("News", "Body", to=recipients)
    html.attach_alternative("<p>Body</p>", "text/html")  # ok: builds the message, no I/O
    html.send()  # error: ASH110:5
    EmailMessage("News", "Body", to=recipients).send(fail_silently=True)  # error: ASH110:5


async def batch(messages):
    connection = get_connection()
    connection.send_messages(messages)  # error: ASH110:5
    mail.get_connection().send_messages(messages)  # error: ASH110:5


async def in_memory(messages, backend_path):
    outbox = get_connection("django.core.mail.backends.locmem.EmailBackend")
    outbox.send_messages(messages)  # ok: the in-memory backend keeps the messages
    quiet = get_connection(backend="django.core.mail.backends.console.EmailBackend")
    quiet.send_messages(messages)  # ok: the console backend prints them
    files = get_connection("django.core.mail.backends.filebased.EmailBackend")
    files.send_messages(messages)  # error: ASH110:5
    configured = get_connection(backend_path)
    configured.send_messages(messages)  # error: ASH110:5


def notify_sync(user):
    send_mail("Welcome", "Body", "from@example.com", [user])  # error: ASH110:5


async def signup(user):
    notify_sync(user)


async def raw_smtp(host, msg):
    with smtplib.SMTP(host) as server:
        server.send_message(msg)  # error: ASH110:9


async def in_a_thread(user):
    await sync_to_async(send_mail)("Hi", "Body", "f@example.com", [user])  # ok: runs in a thread
    await asyncio.to_thread(notify_sync, user)  # ok: runs in a thread
    await sync_to_async(notify_sync)(user)  # ok: runs in a thread


def plain_sync(user):
    send_mail("Hi", "Body", "from@example.com", [user])  # ok: never reached from async code
