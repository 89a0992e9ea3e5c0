"""What each command does to the running app (protocol §4): parsed by `commands`, carried out
here. Does I/O through the app (settings on the card, the screen, the link); split from
`app` to keep each board module small.
"""

from . import commands
from . import settings as settings_mod
from .errors import FrameError

try:  # noqa: SIM105 -- the board has no contextlib
    from .app import App
except ImportError:  # as in the other modules; annotations are never evaluated on the board
    pass


def command(app: "App", name: str, payload: bytes | bytearray | memoryview | str, now: int) -> None:
    try:
        action, value = commands.parse(name, payload)
    except FrameError as e:
        app.report(e)
        return
    if action in settings_mod.COMMANDS:
        if settings_mod.apply(app.settings, action, value):
            app._settings_changed(action, now)
    elif action in ("next", "previous"):
        app._advance(action, now)
    elif action == "show":
        interval = app._interval()
        if app.show.show_id(str(value), now, interval):
            app._shown(now)
        else:  # sent to the frame: shown once downloaded
            app.show.want(str(value), now)
    elif action == "notice":
        app.show.notice(str(value), now)
    elif action in commands.BRIDGE:
        pass
    else:
        try:
            app.store.record.reset(app.summary.width if app.summary else 0)
        except FrameError as e:  # the card: say so, still re-read the manifest
            app.report(e)
        app.link.refresh_summary(now)
