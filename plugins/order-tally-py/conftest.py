# The SDK from this repository (a handler folder made by `hookhost new` has its own copy).
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "sdk" / "python"))
