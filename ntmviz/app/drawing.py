"""A small vector scene (rectangles, lines, polygons, circles, text, heatmaps) and its two writers:
SVG (vector, each heatmap cell a rectangle) and PNG (Pillow, at `scale` pixels per unit).

Figures (figures.py) draw into a Scene in CSS pixels; both writers read the same items, so the
SVG and the PNG show the same thing.

    scene = Scene(300, 200, title="Memory after step 3")
    scene.heatmap(40, 10, 200, 128, colours, name="memory")   # colours [rows, cols, 3] uint8
    scene.text(140, 150, "width", anchor="middle")
    svg_text = to_svg(scene); png_bytes = to_png(scene, scale=3)

A heatmap's cell (r, c) covers [x + c w / cols, + w / cols) x [y + r h / rows, + h / rows); the
SVG writes one <g data-heatmap=NAME> per heatmap: a background rectangle in its most common
colour, then one rectangle per run of equal colours along a row (runs of the background left out).
Rectangles, lines and circles given a `name` carry it as `data-name` (so tests and tools can find
a figure's bars, baselines and discs); text given `hover` shows that full text on hover in the
SVG (a <title>), for labels that had to be shortened. `text_width` measures text as both writers
draw it (DejaVu Sans).
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cache import LRU

FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"
INK = "#333333"
MUTED = "#777777"

# Where text sits relative to its y: the baseline is y + this many font sizes (the same in both
# writers, so SVG and PNG agree without relying on dominant-baseline support).
_BASELINE = {"alphabetic": 0.0, "middle": 0.36, "top": 0.76, "bottom": -0.24}


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str | None = None
    stroke: str | None = None
    width: float = 1.0
    dash: tuple[float, ...] | None = None
    name: str = ""


@dataclass
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = INK
    width: float = 1.0
    dash: tuple[float, ...] | None = None
    name: str = ""


@dataclass
class Polygon:
    points: list[tuple[float, float]]
    fill: str = INK


@dataclass
class Circle:
    cx: float
    cy: float
    r: float
    fill: str | None = INK
    stroke: str | None = None
    width: float = 1.0
    opacity: float = 1.0  # of the fill: overlapping discs stay visible
    name: str = ""


@dataclass
class Text:
    x: float
    y: float
    text: str
    size: float = 11.0
    fill: str = INK
    anchor: str = "start"  # start | middle | end
    baseline: str = "alphabetic"  # alphabetic | middle | top | bottom
    bold: bool = False
    rotate: float = 0.0  # degrees, about (x, y); -90 reads bottom to top
    hover: str = ""  # the full text, shown on hover in the SVG (when `text` is shortened)


@dataclass
class Heatmap:
    x: float
    y: float
    w: float
    h: float
    colours: np.ndarray  # [rows, cols, 3] uint8
    name: str = ""


@dataclass
class Scene:
    """Items in drawing order over a white background, `width` x `height` CSS pixels."""

    width: float
    height: float
    title: str = ""
    description: str = ""
    items: list[Any] = field(default_factory=list)

    def rect(self, x, y, w, h, fill=None, stroke=None, width=1.0, dash=None, name="") -> None:
        self.items.append(Rect(x, y, w, h, fill, stroke, width, dash, name))

    def line(self, x1, y1, x2, y2, stroke=INK, width=1.0, dash=None, name="") -> None:
        self.items.append(Line(x1, y1, x2, y2, stroke, width, dash, name))

    def polygon(self, points, fill=INK) -> None:
        self.items.append(Polygon([(float(x), float(y)) for x, y in points], fill))

    def circle(self, cx, cy, r, fill=INK, stroke=None, width=1.0, opacity=1.0, name="") -> None:
        self.items.append(Circle(cx, cy, r, fill, stroke, width, opacity, name))

    def text(self, x, y, text, size=11.0, fill=INK, anchor="start", baseline="alphabetic", bold=False,
             rotate=0.0, hover="") -> None:
        self.items.append(Text(x, y, str(text), size, fill, anchor, baseline, bold, rotate, str(hover or "")))

    def heatmap(self, x, y, w, h, colours: np.ndarray, name: str = "") -> None:
        colours = np.ascontiguousarray(colours, dtype=np.uint8)
        if colours.ndim != 3 or colours.shape[2] != 3:
            raise ValueError(f"heatmap colours must be [rows, cols, 3], got {colours.shape}")
        self.items.append(Heatmap(x, y, w, h, colours, name))


# ---- measuring text -------------------------------------------------------------------------------
def text_width(text: str, size: float = 11.0, bold: bool = False) -> float:
    """The width of `text` in CSS pixels at font `size`, as DejaVu Sans draws it (the SVG's first
    font and the PNG's); an estimate (0.6 em a character) where Pillow has no such font."""
    font = _font(100, bold)
    if not hasattr(font, "getlength"):
        return 0.6 * size * len(text)
    return float(font.getlength(str(text))) * size / 100


# ---- SVG ------------------------------------------------------------------------------------------
def _n(v: float) -> str:
    """A coordinate, short: at most 3 decimals, no trailing zeros."""
    s = f"{float(v):.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _hex(rgb) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


def _stroke_attrs(stroke, width, dash) -> str:
    if not stroke:
        return ""
    out = f' stroke="{stroke}" stroke-width="{_n(width)}"'
    if dash:
        out += f' stroke-dasharray="{" ".join(_n(d) for d in dash)}"'
    return out


def _name_attr(name: str) -> str:
    return f' data-name="{html.escape(name, quote=True)}"' if name else ""


def _svg_heatmap(item: Heatmap) -> list[str]:
    rows, cols, _ = item.colours.shape
    packed = (item.colours[..., 0].astype(np.uint32) << 16) | (item.colours[..., 1].astype(np.uint32) << 8) \
        | item.colours[..., 2].astype(np.uint32)
    values, counts = np.unique(packed, return_counts=True)
    background = int(values[np.argmax(counts)])
    cw, ch = item.w / cols, item.h / rows
    out = [f'<g data-heatmap="{html.escape(item.name, quote=True)}" data-rows="{rows}" data-cols="{cols}" '
           f'shape-rendering="crispEdges">',
           f'<rect x="{_n(item.x)}" y="{_n(item.y)}" width="{_n(item.w)}" height="{_n(item.h)}" '
           f'fill="#{background:06x}"/>']
    for r in range(rows):
        row = packed[r]
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        ends = np.r_[starts[1:], cols]
        y = item.y + r * ch
        for c0, c1 in zip(starts, ends):
            colour = int(row[c0])
            if colour == background:
                continue
            out.append(f'<rect x="{_n(item.x + c0 * cw)}" y="{_n(y)}" width="{_n((c1 - c0) * cw)}" '
                       f'height="{_n(ch)}" fill="#{colour:06x}"/>')
    out.append("</g>")
    return out


def to_svg(scene: Scene) -> str:
    """The scene as a standalone SVG document (text, never markup, from any string in it)."""
    w, h = scene.width, scene.height
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{_n(w)}" height="{_n(h)}" '
           f'viewBox="0 0 {_n(w)} {_n(h)}" font-family="{FONT_FAMILY}">']
    if scene.title:
        out.append(f"<title>{html.escape(scene.title, quote=False)}</title>")
    if scene.description:
        out.append(f"<desc>{html.escape(scene.description, quote=False)}</desc>")
    out.append(f'<rect x="0" y="0" width="{_n(w)}" height="{_n(h)}" fill="#ffffff"/>')
    for item in scene.items:
        if isinstance(item, Heatmap):
            out += _svg_heatmap(item)
        elif isinstance(item, Rect):
            fill = item.fill or "none"
            out.append(f'<rect x="{_n(item.x)}" y="{_n(item.y)}" width="{_n(item.w)}" height="{_n(item.h)}" '
                       f'fill="{fill}"{_stroke_attrs(item.stroke, item.width, item.dash)}{_name_attr(item.name)}/>')
        elif isinstance(item, Line):
            out.append(f'<line x1="{_n(item.x1)}" y1="{_n(item.y1)}" x2="{_n(item.x2)}" y2="{_n(item.y2)}"'
                       f'{_stroke_attrs(item.stroke, item.width, item.dash)}{_name_attr(item.name)}/>')
        elif isinstance(item, Circle):
            opacity = f' fill-opacity="{_n(item.opacity)}"' if item.fill and item.opacity < 1 else ""
            out.append(f'<circle cx="{_n(item.cx)}" cy="{_n(item.cy)}" r="{_n(item.r)}" fill="{item.fill or "none"}"'
                       f'{opacity}{_stroke_attrs(item.stroke, item.width, None)}{_name_attr(item.name)}/>')
        elif isinstance(item, Polygon):
            pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in item.points)
            out.append(f'<polygon points="{pts}" fill="{item.fill}"/>')
        elif isinstance(item, Text):
            y = item.y + _BASELINE[item.baseline] * item.size
            transform = f' transform="rotate({_n(item.rotate)} {_n(item.x)} {_n(item.y)})"' if item.rotate else ""
            weight = ' font-weight="bold"' if item.bold else ""
            text = (f'<text x="{_n(item.x)}" y="{_n(y)}" font-size="{_n(item.size)}" fill="{item.fill}" '
                    f'text-anchor="{item.anchor}"{weight}{transform}>{html.escape(item.text, quote=False)}</text>')
            if item.hover:  # a <title> beside the text, in a group: the text element keeps only its text
                text = f"<g><title>{html.escape(item.hover, quote=False)}</title>{text}</g>"
            out.append(text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- PNG ------------------------------------------------------------------------------------------
# By (pixel size, bold): a figure uses a handful of sizes at its scale, and the scale is the
# user's (up to figures.MAX_SCALE), so a few figures at other scales fit and no more.
_FONTS: LRU[tuple[int, bool], Any] = LRU(64)


def _font(size: float, bold: bool):
    """DejaVu Sans (Linux, and beside matplotlib), else Arial / Helvetica, else Pillow's own."""
    key = (max(1, round(size)), bold)
    return _FONTS.get_or_make(key, lambda: _load_font(*key))


def _load_font(size: int, bold: bool):
    from PIL import ImageFont

    names = (["DejaVuSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf"] if bold else []) + \
        ["DejaVuSans.ttf", "Arial.ttf", "arial.ttf", "Helvetica.ttc"]
    for name in names:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _rgb(colour: str) -> tuple[int, int, int]:
    v = int(colour[1:], 16)
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def _dashes(x1, y1, x2, y2, dash):
    """The drawn pieces of a dashed segment."""
    length = math.hypot(x2 - x1, y2 - y1)
    if not length:
        return []
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    out, pos, i = [], 0.0, 0
    while pos < length:
        step = dash[i % len(dash)]
        if i % 2 == 0:
            end = min(length, pos + step)
            out.append((x1 + ux * pos, y1 + uy * pos, x1 + ux * end, y1 + uy * end))
        pos += step
        i += 1
    return out


def to_png(scene: Scene, scale: float = 3.0) -> bytes:
    """The scene as PNG bytes, `scale` pixels per CSS pixel, tagged 96 x scale dpi (so it prints
    at the size the screen shows it)."""
    from PIL import Image, ImageDraw

    s = float(scale)
    size = (max(1, math.ceil(scene.width * s)), max(1, math.ceil(scene.height * s)))
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for item in scene.items:
        if isinstance(item, Heatmap):
            x0, y0 = round(item.x * s), round(item.y * s)
            x1, y1 = round((item.x + item.w) * s), round((item.y + item.h) * s)
            if x1 > x0 and y1 > y0:
                tile = Image.fromarray(item.colours, "RGB").resize((x1 - x0, y1 - y0), Image.NEAREST)
                img.paste(tile, (x0, y0))
        elif isinstance(item, Rect):
            x0, y0 = round(item.x * s), round(item.y * s)
            x1, y1 = round((item.x + item.w) * s) - 1, round((item.y + item.h) * s) - 1
            if item.fill:
                draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], fill=_rgb(item.fill))
            if item.stroke:  # the four edges, centred on the outline as SVG strokes are
                corners = [(item.x, item.y), (item.x + item.w, item.y), (item.x + item.w, item.y + item.h),
                           (item.x, item.y + item.h)]
                for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1]):
                    _png_line(draw, ax, ay, bx, by, item.stroke, item.width, item.dash, s)
        elif isinstance(item, Line):
            _png_line(draw, item.x1, item.y1, item.x2, item.y2, item.stroke, item.width, item.dash, s)
        elif isinstance(item, Polygon):
            draw.polygon([(x * s, y * s) for x, y in item.points], fill=_rgb(item.fill))
        elif isinstance(item, Circle):
            _png_circle(img, draw, item, s)
        elif isinstance(item, Text):
            _png_text(img, draw, item, s)
    buf = io.BytesIO()
    img.save(buf, "PNG", dpi=(96 * s, 96 * s), optimize=True)
    return buf.getvalue()


def _png_line(draw, x1, y1, x2, y2, stroke, width, dash, s) -> None:
    w = max(1, round(width * s))
    pieces = _dashes(x1, y1, x2, y2, dash) if dash else [(x1, y1, x2, y2)]
    for a, b, c, d in pieces:
        draw.line([(a * s, b * s), (c * s, d * s)], fill=_rgb(stroke), width=w)


def _png_circle(img, draw, item: Circle, s: float) -> None:
    from PIL import Image, ImageDraw

    box = [(item.cx - item.r) * s, (item.cy - item.r) * s, (item.cx + item.r) * s, (item.cy + item.r) * s]
    if item.fill and item.opacity >= 1:
        draw.ellipse(box, fill=_rgb(item.fill))
    elif item.fill and item.opacity > 0:
        # blend through a mask over the disc's own box (not the whole image): overlapping discs show
        x0, y0 = math.floor(box[0]), math.floor(box[1])
        w, h = math.ceil(box[2]) - x0 + 1, math.ceil(box[3]) - y0 + 1
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).ellipse([box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0],
                                     fill=round(255 * item.opacity))
        img.paste(_rgb(item.fill), (x0, y0, x0 + w, y0 + h), mask)
    if item.stroke:
        draw.ellipse(box, outline=_rgb(item.stroke), width=max(1, round(item.width * s)))


_ANCHOR = {"start": "l", "middle": "m", "end": "r"}


def _png_text(img, draw, item: Text, s: float) -> None:
    from PIL import Image, ImageDraw

    font = _font(item.size * s, item.bold)
    anchor = _ANCHOR[item.anchor] + "s"
    y = item.y + _BASELINE[item.baseline] * item.size
    if not item.rotate:
        draw.text((item.x * s, y * s), item.text, font=font, fill=_rgb(item.fill), anchor=anchor)
        return
    # rotated text: draw it level on a transparent tile around its anchor, turn the tile, paste
    pad = int(item.size * s * (len(item.text) + 2))
    tile = Image.new("RGBA", (2 * pad, 2 * pad), (255, 255, 255, 0))
    ImageDraw.Draw(tile).text((pad, pad + _BASELINE[item.baseline] * item.size * s), item.text, font=font,
                              fill=_rgb(item.fill) + (255,), anchor=anchor)
    tile = tile.rotate(-item.rotate, resample=Image.BICUBIC, center=(pad, pad))
    img.paste(tile, (round(item.x * s) - pad, round(item.y * s) - pad), tile)
