"""ASH104 blocking-subprocess."""

import os
import subprocess


def build():
    subprocess.run(["make"], check=True)  # error: ASH104:5


async def deploy():
    build()
    os.system("true")  # error: ASH104:5
