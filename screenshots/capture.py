#!/usr/bin/env python3
"""Take the README screenshots of the real kockpit binary running on its built-in sandbox.

    python3 -m venv /tmp/shotvenv && . /tmp/shotvenv/bin/activate   # or any environment
    pip install pyte pillow
    cargo build
    python3 screenshots/capture.py              # all shots, into screenshots/
    python3 screenshots/capture.py help-dark    # only the shots named

Each shot starts `target/debug/kockpit` (override with --binary, or KOCKPIT_BIN) in a
pseudo-terminal of the shot's size, with HOME and XDG_CONFIG_HOME pointing to an empty
temporary directory (so no user config is read), TERM=xterm-256color and COLORTERM=truecolor.
The program's output is fed to the pyte terminal emulator; the script types the shot's keys,
waits, waits for the screen to settle (no output for a moment, so no half-drawn frame), copies
the screen, then presses `q` (which quits from the help screen too) and checks that the
program exits with status 0, leaves the alternate screen and shows the cursor again. The copy
is drawn cell by cell to a PNG with Pillow.

Drawing: text uses a monospace TrueType font found on this machine (DejaVu Sans Mono, from
Debian's fonts-dejavu-core, by default; --font to choose another), with DejaVu Sans as a
fallback for characters the monospace font lacks. Braille (U+2800-U+28FF, the chart dots; not
in DejaVu Sans Mono), box-drawing lines and block elements are drawn as shapes instead, as
terminals such as kitty and WezTerm do, so that they fill and join across cells whatever the
font. Colours: pyte gives named, xterm-256 and 24-bit colours; the 16 ANSI colours and the
default foreground and background come from a dark palette (VS Code's terminal colours on
#1e1e2e) for the dark shots and a light one (Tango on white) for the light shots, as a terminal
with that background would show them. Bold, reverse, underline, italics and strike-through
are honoured (pyte does not keep DIM, which kockpit's built-in themes do not use).

Nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyte
import pyte.graphics
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# --------------------------------------------------------------------------------------------
# The shots
# --------------------------------------------------------------------------------------------

@dataclass
class Shot:
    name: str  # the PNG is screenshots/<name>.png
    cols: int
    rows: int
    theme: str  # kockpit --theme, and which palette the PNG uses ("light" or anything else)
    # What to do after start: a number waits that many seconds, a string is typed as keys.
    steps: list = field(default_factory=list)
    # Keys that must end the program once the screen is copied.
    quit: str = "q"
    # Extra command-line arguments.
    args: list = field(default_factory=list)

    @property
    def light(self) -> bool:
        return self.theme == "light"


SHOTS = [
    # Charts and logs need a few seconds of polling to fill.
    Shot("wide-dark", 200, 50, "dark", [8]),
    Shot("wide-light", 200, 50, "light", [8]),
    Shot("80x24-dark", 80, 24, "dark", [8]),
    # `l` switches the narrow (tabbed) view to production.
    Shot("80x24-production-light", 80, 24, "light", [3, "l", 5]),
    # `?` shows the key bindings in force; `q` quits from there too.
    Shot("help-dark", 120, 35, "dark", [4, "?", 1.5]),
    # Production: move to it, select checkout, ask to abort; the typed confirmation.
    # A release of checkout in staging: `o`, `y`, then the exit checklist filling in
    # (screenshots/release-demo.toml: a passing and a failing smoke check, a 20 s window).
    Shot("release-checklist-dark", 200, 50, "dark", [8, "g", 0.5, "j", "j", 1, "o", 1, "y", 26],
         args=["--config", str(HERE / "release-demo.toml")]),
    Shot("confirm-production-dark", 120, 40, "dark", [6, "l", 1, "g", "j", "j", 1, "a", 2, "checkout", 0.5], quit="\x1bq"),
]


# --------------------------------------------------------------------------------------------
# Palettes: the 16 ANSI colours plus the terminal's default foreground and background
# --------------------------------------------------------------------------------------------

def _hex(s: str) -> tuple[int, int, int]:
    s = s.lstrip("#")
    return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)


# The 16 ANSI colours of two widely used terminals. Dark: VS Code's integrated terminal
# (Dark+). Light: Tango, GNOME Terminal's long-time default, whose white stays light (VS Code's
# light terminal turns ANSI white into dark grey).
ANSI_VSCODE_DARK = [_hex(c) for c in (
    "#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
    "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#e5e5e5",
)]
ANSI_TANGO = [_hex(c) for c in (
    "#2e3436", "#cc0000", "#4e9a06", "#c4a000", "#3465a4", "#75507b", "#06989a", "#d3d7cf",
    "#555753", "#ef2929", "#8ae234", "#fce94f", "#729fcf", "#ad7fa8", "#34e2e2", "#eeeeec",
)]


@dataclass
class Palette:
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]
    ansi: list

    def resolve(self, color: str, is_fg: bool) -> tuple[int, int, int]:
        """A pyte colour (\"default\", a name, \"ansiN\" or 6 hex digits) as RGB."""
        if color == "default":
            return self.fg if is_fg else self.bg
        if color in _NAMED:
            return self.ansi[_NAMED[color]]
        if color.startswith("ansi"):
            return self.ansi[int(color[4:])]
        try:
            return _hex(color)
        except ValueError:
            return self.fg if is_fg else self.bg


DARK = Palette(fg=_hex("#d4d4d4"), bg=_hex("#1e1e2e"), ansi=ANSI_VSCODE_DARK)
LIGHT = Palette(fg=_hex("#1e1e1e"), bg=_hex("#ffffff"), ansi=ANSI_TANGO)

# pyte's names for SGR 30-37 / 90-97 ("brown" is yellow; "bfightmagenta" is pyte's own spelling
# for SGR 105).
_BASE_NAMES = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]
_NAMED = {n: i for i, n in enumerate(_BASE_NAMES)}
_NAMED.update({"bright" + n: i + 8 for i, n in enumerate(_BASE_NAMES)})
_NAMED["bfightmagenta"] = 13

# pyte turns `38;5;N` into fixed xterm hex values, also for N < 16; crossterm sends named colours
# that way, so mark those 16 as "ansiN" to take them from the palette instead.
for _i in range(16):
    pyte.graphics.FG_BG_256[_i] = f"ansi{_i}"


# --------------------------------------------------------------------------------------------
# Running the program in a pseudo-terminal
# --------------------------------------------------------------------------------------------

class _Screen(pyte.Screen):
    """A pyte screen that answers the program's terminal queries (cursor position, device
    attributes) through the pty."""

    def __init__(self, cols: int, rows: int, master_fd: int):
        super().__init__(cols, rows)
        self._fd = master_fd

    def write_process_input(self, data: str) -> None:
        os.write(self._fd, data.encode())


def _snapshot(screen: pyte.Screen) -> list:
    """The screen's cells as plain rows of pyte Char (immutable namedtuples)."""
    return [[screen.buffer[y][x] for x in range(screen.columns)] for y in range(screen.lines)]


def run_shot(shot: Shot, binary: Path) -> list:
    """Runs the program for one shot and returns the screen's cells. Raises if it misbehaves."""
    home = tempfile.mkdtemp(prefix="kockpit-shot-")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "LANG": "C.UTF-8",
    }
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", shot.rows, shot.cols, 0, 0))
    proc = subprocess.Popen(
        [str(binary), "--theme", shot.theme, *shot.args],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=home,
        start_new_session=True,  # the pty becomes its controlling terminal
    )
    os.close(slave)
    screen = _Screen(shot.cols, shot.rows, master)
    stream = pyte.ByteStream(screen)
    tail = bytearray()  # the last output, to check how the program left the terminal

    def pump(seconds: float, quiet: float | None = None) -> None:
        """Feeds output to the screen for `seconds`, or, with `quiet`, until no output has
        come for `quiet` seconds (at most `seconds`)."""
        end = time.monotonic() + seconds
        last = time.monotonic()
        while (now := time.monotonic()) < end:
            if quiet is not None and now - last >= quiet:
                return
            ready, _, _ = select.select([master], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program has closed the terminal
                return
            if not data:
                return
            last = time.monotonic()
            stream.feed(data)
            tail.extend(data)
            del tail[:-4096]

    try:
        for step in shot.steps:
            if isinstance(step, str):
                os.write(master, step.encode())
            else:
                pump(step)
        pump(3, quiet=0.15)
        cells = _snapshot(screen)
        if proc.poll() is not None:
            raise RuntimeError(f"{shot.name}: kockpit exited early with status {proc.returncode}")

        for key in shot.quit:
            if proc.poll() is None:
                os.write(master, key.encode())
                pump(0.3)
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            pump(0.1)
        if proc.poll() is None:
            raise RuntimeError(f"{shot.name}: kockpit did not exit within 5 s of {shot.quit!r}")
        rc = proc.returncode
        pump(0.2)
        if rc != 0:
            raise RuntimeError(f"{shot.name}: kockpit exited with status {rc}")
        left_alt = tail.rfind(b"\x1b[?1049l") > tail.rfind(b"\x1b[?1049h")
        cursor_shown = tail.rfind(b"\x1b[?25h") > tail.rfind(b"\x1b[?25l")
        if not (left_alt and cursor_shown):
            raise RuntimeError(f"{shot.name}: kockpit did not restore the terminal "
                               f"(left alternate screen: {left_alt}, cursor shown: {cursor_shown})")
        return cells
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        shutil.rmtree(home, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Drawing cells
# --------------------------------------------------------------------------------------------

CELL_W, CELL_H = 9, 18
FONT_SIZE = 15  # DejaVu Sans Mono advances 0.602 em: 15 px gives a 9 px cell
PAD = 6  # margin around the terminal, in the background colour
SS = 4  # supersampling for drawn shapes (braille dots, rounded corners)

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono{}.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono{}.ttf",
]
FALLBACK_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans{}.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans{}.ttf",
]
STYLE_SUFFIX = {(False, False): "", (True, False): "-Bold",
                (False, True): "-Oblique", (True, True): "-BoldOblique"}


def _first_existing(patterns: list, suffix: str) -> str | None:
    for p in patterns:
        if os.path.exists(p.format(suffix)):
            return p.format(suffix)
    return None


# Box drawing: each character as the weight of its arm (up, right, down, left):
# 1 light, 2 heavy, 3 double; "r" marks rounded corners.
_BOX = {
    "─": (0, 1, 0, 1), "━": (0, 2, 0, 2), "│": (1, 0, 1, 0), "┃": (2, 0, 2, 0),
    "┌": (0, 1, 1, 0), "┏": (0, 2, 2, 0), "┐": (0, 0, 1, 1), "┓": (0, 0, 2, 2),
    "└": (1, 1, 0, 0), "┗": (2, 2, 0, 0), "┘": (1, 0, 0, 1), "┛": (2, 0, 0, 2),
    "├": (1, 1, 1, 0), "┣": (2, 2, 2, 0), "┤": (1, 0, 1, 1), "┫": (2, 0, 2, 2),
    "┬": (0, 1, 1, 1), "┳": (0, 2, 2, 2), "┴": (1, 1, 0, 1), "┻": (2, 2, 0, 2),
    "┼": (1, 1, 1, 1), "╋": (2, 2, 2, 2),
    "╴": (0, 0, 0, 1), "╵": (1, 0, 0, 0), "╶": (0, 1, 0, 0), "╷": (0, 0, 1, 0),
    "═": (0, 3, 0, 3), "║": (3, 0, 3, 0), "╔": (0, 3, 3, 0), "╗": (0, 0, 3, 3),
    "╚": (3, 3, 0, 0), "╝": (3, 0, 0, 3), "╠": (3, 3, 3, 0), "╣": (3, 0, 3, 3),
    "╦": (0, 3, 3, 3), "╩": (3, 3, 0, 3), "╬": (3, 3, 3, 3),
    "╭": "r", "╮": "r", "╯": "r", "╰": "r",
}

# Block elements: the filled part as fractions of the cell (x0, y0, x1, y1), or a shade.
_BLOCKS = {
    "█": (0, 0, 1, 1), "▀": (0, 0, 1, 0.5), "▐": (0.5, 0, 1, 1),
    "▔": (0, 0, 1, 1 / 8), "▕": (7 / 8, 0, 1, 1),
    **{chr(0x2581 + i): (0, 1 - (i + 1) / 8, 1, 1) for i in range(8)},  # ▁ … █ from below
    **{chr(0x2589 + i): (0, 0, (7 - i) / 8, 1) for i in range(7)},  # ▉ … ▏ from the left
}
_SHADES = {"░": 64, "▒": 128, "▓": 192}


class Renderer:
    def __init__(self, font_path: str | None = None):
        self.fonts = {}
        self.fallbacks = {}
        for (bold, italic), suffix in STYLE_SUFFIX.items():
            # A font given with --font serves every style; DejaVu has a file for each.
            path = font_path or _first_existing(FONT_CANDIDATES, suffix)
            if path is None:
                raise SystemExit("no monospace font found: pass --font PATH.ttf")
            self.fonts[bold, italic] = ImageFont.truetype(path, FONT_SIZE)
            fb = _first_existing(FALLBACK_CANDIDATES, suffix)
            self.fallbacks[bold, italic] = ImageFont.truetype(fb, FONT_SIZE) if fb else None
        self.font_path = self.fonts[False, False].path
        ascent, descent = self.fonts[False, False].getmetrics()
        self.baseline = (CELL_H - (ascent + descent)) // 2 + ascent
        self.masks = {}
        self._notdef = {}
        self.missing = set()  # characters no font had

    # -- masks: one L-mode image per (character, bold, italic), white where the ink is --

    def mask(self, ch: str, bold: bool, italic: bool) -> Image.Image:
        key = (ch, bold, italic)
        if key not in self.masks:
            self.masks[key] = self._make_mask(ch, bold, italic)
        return self.masks[key]

    def _make_mask(self, ch: str, bold: bool, italic: bool) -> Image.Image:
        if len(ch) == 1:
            cp = ord(ch)
            if 0x2800 <= cp <= 0x28FF:
                return self._braille(cp - 0x2800)
            if ch in _BOX:
                return self._box(ch)
            if ch in _BLOCKS:
                return self._block(_BLOCKS[ch])
            if ch in _SHADES:
                return Image.new("L", (CELL_W, CELL_H), _SHADES[ch])
        font = self.fonts[bold, italic]
        if not self._has_glyph(font, ch):
            fb = self.fallbacks[bold, italic]
            if fb is not None and self._has_glyph(fb, ch):
                font = fb
            else:
                self.missing.add(ch)
        return self._glyph(font, ch)

    def _glyph(self, font, ch: str) -> Image.Image:
        # Wide characters (CJK, some emoji) take two cells; draw them two cells wide.
        width = CELL_W * 2 if pyte.screens.wcwidth(ch) == 2 else CELL_W
        m = Image.new("L", (width, CELL_H), 0)
        advance = font.getlength(ch)
        x = max(0, (width - advance) / 2)  # centres fallback glyphs of another width
        ImageDraw.Draw(m).text((x, self.baseline), ch, font=font, fill=255, anchor="ls")
        return m

    def _has_glyph(self, font, ch: str) -> bool:
        """Whether the font draws `ch` as something other than its missing-glyph box."""
        if ch.strip() == "" or ord(ch[0]) < 0x80:
            return True
        def ink(c: str) -> bytes:
            im = Image.new("L", (CELL_W * 3, CELL_H * 2), 0)
            ImageDraw.Draw(im).text((CELL_W, CELL_H // 2), c, font=font, fill=255)
            return im.tobytes()

        if font not in self._notdef:
            self._notdef[font] = ink("\U0010FFFD")
        return ink(ch) != self._notdef[font]

    def _braille(self, bits: int) -> Image.Image:
        # Dots 1-3 and 7 in the left column, 4-6 and 8 on the right (Unicode's bit order).
        dots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
        big = Image.new("L", (CELL_W * SS, CELL_H * SS), 0)
        d = ImageDraw.Draw(big)
        r = 1.4 * SS
        for bit, (cx, cy) in enumerate(dots):
            if bits & (1 << bit):
                x = (cx * 2 + 1) * CELL_W * SS / 4
                y = (cy * 2 + 1) * CELL_H * SS / 8
                d.ellipse((x - r, y - r, x + r, y + r), fill=255)
        return big.resize((CELL_W, CELL_H), Image.LANCZOS)

    def _box(self, ch: str) -> Image.Image:
        m = Image.new("L", (CELL_W, CELL_H), 0)
        d = ImageDraw.Draw(m)
        cx, cy = CELL_W // 2, CELL_H // 2  # the light line's pixel column / row
        spec = _BOX[ch]
        if spec == "r":
            return self._rounded(ch)
        up, right, down, left = spec

        def span(weight: int, centre: int) -> list:
            # Pixel ranges [a, b) of the line(s) an arm of that weight draws.
            if weight == 1:
                return [(centre, centre + 1)]
            if weight == 2:
                return [(centre - 1, centre + 2)]
            return [(centre - 2, centre - 1), (centre + 2, centre + 3)]

        heaviest_v = max(up, down)
        heaviest_h = max(left, right)
        # Vertical arms run to the far edge of the horizontal line(s), and back.
        hy = [v for a, b in span(heaviest_h or 1, cy) for v in (a, b)]
        vx = [v for a, b in span(heaviest_v or 1, cx) for v in (a, b)]
        for weight, (y0, y1) in ((up, (0, max(hy) if heaviest_h else cy + 1)),
                                 (down, (min(hy) if heaviest_h else cy, CELL_H))):
            if weight:
                for a, b in span(weight, cx):
                    d.rectangle((a, y0, b - 1, y1 - 1), fill=255)
        for weight, (x0, x1) in ((left, (0, max(vx) if heaviest_v else cx + 1)),
                                 (right, (min(vx) if heaviest_v else cx, CELL_W))):
            if weight:
                for a, b in span(weight, cy):
                    d.rectangle((x0, a, x1 - 1, b - 1), fill=255)
        return m

    def _rounded(self, ch: str) -> Image.Image:
        big = Image.new("L", (CELL_W * SS, CELL_H * SS), 0)
        d = ImageDraw.Draw(big)
        cx, cy = (CELL_W // 2 + 0.5) * SS, (CELL_H // 2 + 0.5) * SS
        r = min(cx, cy) * 0.8
        w = SS
        # Which way the arms go: (horizontal sign, vertical sign).
        sx, sy = {"╭": (1, 1), "╮": (-1, 1), "╯": (-1, -1), "╰": (1, -1)}[ch]
        # Centre of the arc, and the straight parts from the arc to the cell's edges.
        ax, ay = cx + sx * r, cy + sy * r
        start = {(1, 1): 180, (-1, 1): 270, (-1, -1): 0, (1, -1): 90}[sx, sy]
        d.arc((ax - r - w / 2, ay - r - w / 2, ax + r + w / 2, ay + r + w / 2),
              start, start + 90, fill=255, width=w)
        x_edge = CELL_W * SS if sx > 0 else 0
        d.rectangle((min(ax, x_edge), cy - w / 2, max(ax, x_edge), cy + w / 2 - 1), fill=255)
        y_edge = CELL_H * SS if sy > 0 else 0
        d.rectangle((cx - w / 2, min(ay, y_edge), cx + w / 2 - 1, max(ay, y_edge)), fill=255)
        return big.resize((CELL_W, CELL_H), Image.LANCZOS)

    def _block(self, frac: tuple) -> Image.Image:
        m = Image.new("L", (CELL_W, CELL_H), 0)
        x0, y0, x1, y1 = (round(frac[0] * CELL_W), round(frac[1] * CELL_H),
                          round(frac[2] * CELL_W), round(frac[3] * CELL_H))
        if x1 > x0 and y1 > y0:
            ImageDraw.Draw(m).rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
        return m

    # -- the whole screen --

    def render(self, cells: list, palette: Palette) -> Image.Image:
        rows, cols = len(cells), len(cells[0])
        img = Image.new("RGB", (cols * CELL_W + 2 * PAD, rows * CELL_H + 2 * PAD), palette.bg)
        draw = ImageDraw.Draw(img)
        for y, row in enumerate(cells):
            for x, c in enumerate(row):
                fg = palette.resolve(c.fg, True)
                bg = palette.resolve(c.bg, False)
                if c.reverse:
                    fg, bg = bg, fg
                px, py = PAD + x * CELL_W, PAD + y * CELL_H
                if bg != palette.bg:
                    draw.rectangle((px, py, px + CELL_W - 1, py + CELL_H - 1), fill=bg)
                if c.data == "":  # the right half of a wide character
                    continue
                if c.data.strip():
                    m = self.mask(c.data, c.bold, c.italics)
                    img.paste(fg, (px, py, px + m.width, py + m.height), m)
                if c.underscore:
                    uy = py + min(self.baseline + 2, CELL_H - 1)
                    draw.line((px, uy, px + CELL_W - 1, uy), fill=fg)
                if c.strikethrough:
                    sy = py + CELL_H // 2
                    draw.line((px, sy, px + CELL_W - 1, sy), fill=fg)
        return img


# --------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="shots to take (default: all): "
                    + ", ".join(s.name for s in SHOTS))
    ap.add_argument("--binary", type=Path,
                    default=Path(os.environ.get("KOCKPIT_BIN", REPO / "target/debug/kockpit")))
    ap.add_argument("--font", help="a monospace .ttf for text, about 0.6 em wide "
                    "(default: DejaVu Sans Mono)")
    ap.add_argument("--out", type=Path, default=HERE, help="where the PNGs go")
    args = ap.parse_args()

    shots = [s for s in SHOTS if not args.names or s.name in args.names]
    unknown = set(args.names) - {s.name for s in SHOTS}
    if unknown:
        ap.error(f"unknown shot(s): {', '.join(sorted(unknown))}")
    if not args.binary.exists():
        ap.error(f"{args.binary} not found: run `cargo build` first")

    renderer = Renderer(args.font)
    print(f"font: {renderer.font_path}")
    args.out.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        cells = run_shot(shot, args.binary)
        img = renderer.render(cells, LIGHT if shot.light else DARK)
        path = args.out / f"{shot.name}.png"
        img.save(path, optimize=True)
        print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
              f"{shot.cols}x{shot.rows}, {img.width}x{img.height} px")
    if renderer.missing:
        print("no glyph for: " + " ".join(f"U+{ord(c[0]):04X}" for c in sorted(renderer.missing)),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
