"""What each command does to the running app (protocol §4): parsed by `commands`, carried out
here. Does I/O through the app (settings on the card, the screen, the link); split from
`app` to keep each board module small, and imported at the first command, not at boot.
"""

from . import commands
from . import settings as settings_mod
from .errors import FrameError

WANT_MS = 600000  # a picture asked for before it is on the card is shown if it comes by then
NOTICE_MS = 3000

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
        else:  # sent to the frame: shown once downloaded, if within WANT_MS
            app.show.wanted, app.show.wanted_until = str(value), now + WANT_MS
    elif action == "notice":
        app.device.notice(str(value))  # taken away by `Show.tick` after NOTICE_MS
        app.show.notice_until = now + NOTICE_MS
    elif action in commands.BRIDGE:
        pass
    else:
        try:
            app.store.record.reset(app.summary.width if app.summary else 0)
        except FrameError as e:  # the card: say so, still re-read the manifest
            app.report(e)
        app.link.refresh_summary(now)


def arrived(app: "App", now: int) -> bool:
    """The card changed: draw the picture sent to the frame if it is there now; True when
    drawn. A later `show` replaced it; past WANT_MS it is forgotten."""
    show = app.show
    wanted = show.wanted
    if wanted is None or now > show.wanted_until:
        show.wanted = None
        return False
    if not show.show_id(wanted, now, app._interval()):
        return False
    show.wanted = None
    return True
