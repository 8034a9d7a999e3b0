"""Written by the coderchat offline demo."""

import platform
import sys

print(f"Hello from Python {sys.version.split()[0]} on {platform.system()}!")
print("Squares:", [n * n for n in range(1, 6)])
