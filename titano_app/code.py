"""titanoframe on the PyPortal Titano: start the frame app. Settings come from settings.toml."""

from frame.app import run
from frame.hw import Board

run(Board())
