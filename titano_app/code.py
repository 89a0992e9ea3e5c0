"""titanoframe on the PyPortal Titano: start the frame app. Settings come from settings.toml."""

from frame.hw import Board
from frame.main import run

run(Board())
