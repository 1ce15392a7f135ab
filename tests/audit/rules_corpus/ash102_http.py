"""ASH102 blocking-http-client, including a session returned by an annotated project function."""

import requests


def make_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "shop"
    return session


class Gateway:
    def __init__(self, session: requests.Session):
        self.session = session

    def charge(self, amount):
        return self.session.post("https://pay.example/charge", json=amount)  # error: ASH102:16


async def fetch(url):
    return requests.get(url, timeout=5)  # error: ASH102:12


async def fetch_with_session(url):
    session = make_session()
    return session.get(url)  # error: ASH102:12


async def pay(gateway: Gateway, amount):
    return gateway.charge(amount)
