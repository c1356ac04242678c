"""Making Qt's SVG output look the same in every viewer.

``QSvgGenerator`` writes what the painter drew, but two habits of it depend on the viewer:

* **Cosmetic lines** (pyqtgraph's plot lines, outlines and axes are one or a few *screen* pixels
  wide, whatever the zoom) are written as ``vector-effect="non-scaling-stroke"`` inside a group
  whose ``transform`` maps data coordinates to the page, often scaling by 20 to 1000. Browsers
  honour that; librsvg, many slide programs and converters ignore it and draw the lines 20 to 1000
  times too wide, covering the plot. ``bake_cosmetic_strokes`` moves such shapes into page
  coordinates (the transform is applied to their points and dropped), so the stroke width means
  page units everywhere; where that is not possible (rotation, text in the group) the stroke width
  is divided by the group's scale instead.
* **Small images** (a heatmap is one pixel per cell) are smoothed when scaled up by most viewers,
  which ignore ``image-rendering``. ``sharpen_images`` enlarges them with nearest-neighbour
  sampling; the image keeps its place and size in the drawing.

``clean_svg(data)`` applies both.
"""
from __future__ import annotations

import base64
import math
import re
import xml.etree.ElementTree as ET

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

SHAPES = {f"{{{SVG_NS}}}{t}" for t in ("path", "rect", "polyline", "polygon", "line", "ellipse", "circle")}
SHARP_SIDE = 512  # small embedded images are enlarged to at least this many pixels on a side
_MATRIX = re.compile(r"matrix\(([^)]*)\)")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATH_TOKEN = re.compile(rf"([MLCQZmlcqzHhVvAaSsTt])|({_NUM})\s*,\s*({_NUM})")


def _fmt(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _matrix(g) -> tuple[float, ...] | None:
    m = _MATRIX.search(g.get("transform", ""))
    if not m:
        return None
    try:
        vals = tuple(float(v) for v in m.group(1).replace(" ", ",").split(",") if v)
    except ValueError:
        return None
    return vals if len(vals) == 6 else None


def _map_path(d: str, a: float, dd: float, e: float, f: float) -> str | None:
    out, pos = [], 0
    for m in _PATH_TOKEN.finditer(d):
        if d[pos:m.start()].strip():
            return None  # something we do not parse
        pos = m.end()
        if m.group(1):
            if m.group(1) not in "MLCQZ":
                return None  # relative or arc commands: leave the path alone
            out.append(m.group(1))
        else:
            out.append(f"{_fmt(a * float(m.group(2)) + e)},{_fmt(dd * float(m.group(3)) + f)}")
    if d[pos:].strip():
        return None
    return " ".join(out)


def _map_points(pts: str, a: float, dd: float, e: float, f: float) -> str | None:
    nums = re.findall(_NUM, pts)
    if len(nums) % 2:
        return None
    xy = [(float(nums[i]), float(nums[i + 1])) for i in range(0, len(nums), 2)]
    return " ".join(f"{_fmt(a * x + e)},{_fmt(dd * y + f)}" for x, y in xy)


def _map_shape(el, a: float, dd: float, e: float, f: float) -> bool:
    """Apply x' = a·x + e, y' = dd·y + f to one shape's geometry; False if it cannot be done."""
    tag = el.tag.rsplit("}", 1)[-1]
    try:
        if tag == "path":
            d = _map_path(el.get("d", ""), a, dd, e, f)
            if d is None:
                return False
            el.set("d", d)
        elif tag in ("polyline", "polygon"):
            pts = _map_points(el.get("points", ""), a, dd, e, f)
            if pts is None:
                return False
            el.set("points", pts)
        elif tag == "rect":
            x, y = float(el.get("x", 0)), float(el.get("y", 0))
            w, h = float(el.get("width", 0)), float(el.get("height", 0))
            x0, x1 = sorted((a * x + e, a * (x + w) + e))
            y0, y1 = sorted((dd * y + f, dd * (y + h) + f))
            for k, v in (("x", x0), ("y", y0), ("width", x1 - x0), ("height", y1 - y0)):
                el.set(k, _fmt(v))
        elif tag == "line":
            for kx, ky in (("x1", "y1"), ("x2", "y2")):
                el.set(kx, _fmt(a * float(el.get(kx, 0)) + e))
                el.set(ky, _fmt(dd * float(el.get(ky, 0)) + f))
        elif tag in ("ellipse", "circle"):
            cx, cy = float(el.get("cx", 0)), float(el.get("cy", 0))
            rx = float(el.get("rx", el.get("r", 0)))
            ry = float(el.get("ry", el.get("r", 0)))
            el.tag = f"{{{SVG_NS}}}ellipse"
            el.attrib.pop("r", None)
            for k, v in (("cx", a * cx + e), ("cy", dd * cy + f), ("rx", abs(a) * rx), ("ry", abs(dd) * ry)):
                el.set(k, _fmt(v))
        else:
            return False
    except ValueError:
        return False
    return True


def bake_cosmetic_strokes(root) -> int:
    """Rewrite every group holding non-scaling strokes (see the module docstring); return how many
    groups were changed."""
    changed = 0
    for g in root.iter(f"{{{SVG_NS}}}g"):
        kids = list(g)
        cosmetic = [k for k in kids if k.get("vector-effect") == "non-scaling-stroke"]
        if not cosmetic:
            continue
        m = _matrix(g)
        if m is None:
            m = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        a, b, c, dd, e, f = m
        if (a, b, c, dd, e, f) == (1.0, 0.0, 0.0, 1.0, 0.0, 0.0):
            for k in cosmetic:
                del k.attrib["vector-effect"]
            changed += 1
            continue
        if b == 0 and c == 0 and all(k.tag in SHAPES for k in kids):
            backup = [dict(k.attrib) for k in kids]
            if all(_map_shape(k, a, dd, e, f) for k in kids):
                g.set("transform", "matrix(1,0,0,1,0,0)")
                for k in kids:
                    k.attrib.pop("vector-effect", None)
                changed += 1
                continue
            for k, attrs in zip(kids, backup):  # undo a partial mapping
                k.attrib.clear()
                k.attrib.update(attrs)
        scale = math.sqrt(abs(a * dd - b * c)) or 1.0
        width = float(g.get("stroke-width", "1") or 1)
        for k in cosmetic:
            k.set("stroke-width", _fmt(width / scale))
            del k.attrib["vector-effect"]
        changed += 1
    return changed


def _png(image: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data)


def sharpen_images(root) -> int:
    """Enlarge small embedded PNGs with nearest-neighbour sampling; return how many."""
    href = f"{{{XLINK_NS}}}href"
    done = 0
    for el in root.iter(f"{{{SVG_NS}}}image"):
        ref = el.get(href) or el.get("href") or ""
        prefix = "data:image/png;base64,"
        if not ref.startswith(prefix):
            continue
        img = QImage.fromData(base64.b64decode(ref[len(prefix):]), "PNG")
        if img.isNull():
            continue
        k = -(-SHARP_SIDE // max(img.width(), img.height()))  # ceil
        if k <= 1 or img.width() * img.height() * k * k > 4_000_000:
            continue
        big = img.scaled(img.width() * k, img.height() * k, Qt.AspectRatioMode.IgnoreAspectRatio,
                         Qt.TransformationMode.FastTransformation)
        el.set(href if el.get(href) else "href", prefix + base64.b64encode(_png(big)).decode("ascii"))
        done += 1
    return done


def clean_svg(data: bytes) -> bytes:
    """Qt's SVG with cosmetic strokes baked and small images sharpened."""
    root = ET.fromstring(data)
    bake_cosmetic_strokes(root)
    sharpen_images(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
