"""ASH109 blocking-input."""


async def confirm():
    return input("continue? ") == "y"  # error: ASH109:12
