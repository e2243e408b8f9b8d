"""Which SVG images may be uploaded (the Company logo, profile pictures): an allow-list, so that
what is not known to be inert is refused. Kept: the SVG elements that draw (shapes, text,
gradients, patterns, clipping, masks, filters), SMIL animation of anything but a link, and
the metadata drawing programs write (RDF, Dublin Core, Inkscape, Sodipodi). Refused: any other
element (script, foreignObject, XHTML, MathML, unknown namespaces), any other attribute (event
handlers among them), a link (`href`, CSS `url()`, including `\\75 rl(` and other CSS escapes) to
anything but this document's own `#id` or an embedded PNG, JPEG, GIF or WebP, and CSS `@import`
in any spelling. DTDs are refused before parsing (no entities)."""

from __future__ import annotations

import re
from xml.etree import ElementTree

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
# Namespaces of drawing programs' metadata, inert in a browser.
METADATA_NAMESPACES = frozenset(
    {
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "http://creativecommons.org/ns#",
        "http://purl.org/dc/elements/1.1/",
        "http://purl.org/dc/terms/",
        "http://www.inkscape.org/namespaces/inkscape",
        "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd",
        "http://ns.adobe.com/AdobeIllustrator/10.0/",
        "http://www.bohemiancoding.com/sketch/ns",
    }
)

_ELEMENT_NAMES = """svg g defs title desc metadata symbol use image switch view style
    path rect circle ellipse line polyline polygon text tspan textPath
    linearGradient radialGradient stop pattern clipPath mask marker
    filter feBlend feColorMatrix feComponentTransfer feComposite feConvolveMatrix feDiffuseLighting
    feDisplacementMap feDistantLight feDropShadow feFlood feFuncA feFuncB feFuncG feFuncR
    feGaussianBlur feImage feMerge feMergeNode feMorphology feOffset fePointLight
    feSpecularLighting feSpotLight feTile feTurbulence
    animate animateTransform animateMotion mpath set"""
ELEMENTS = frozenset(_ELEMENT_NAMES.split())
ANIMATIONS = frozenset({"animate", "animateTransform", "animateMotion", "set"})

_ATTRIBUTE_NAMES = """id class style lang tabindex transform viewBox preserveAspectRatio version baseProfile
    x y x1 y1 x2 y2 cx cy r rx ry fx fy fr width height d points pathLength dx dy rotate
    textLength lengthAdjust startOffset method spacing side
    gradientUnits gradientTransform spreadMethod offset patternUnits patternContentUnits
    patternTransform clipPathUnits maskUnits maskContentUnits markerUnits markerWidth markerHeight
    refX refY orient filterUnits primitiveUnits in in2 result mode type values operator k1 k2 k3 k4
    order kernelMatrix divisor bias targetX targetY edgeMode kernelUnitLength preserveAlpha
    surfaceScale diffuseConstant specularConstant specularExponent scale xChannelSelector
    yChannelSelector stdDeviation radius baseFrequency numOctaves seed stitchTiles azimuth
    elevation z pointsAtX pointsAtY pointsAtZ limitingConeAngle tableValues slope intercept
    amplitude exponent requiredFeatures requiredExtensions systemLanguage
    attributeName attributeType begin dur end min max restart repeatCount repeatDur fill calcMode
    keyTimes keySplines keyPoints from to by additive accumulate path
    alignment-baseline baseline-shift clip clip-path clip-rule color color-interpolation
    color-interpolation-filters color-profile color-rendering cursor direction display
    dominant-baseline enable-background fill-opacity fill-rule filter flood-color flood-opacity
    font font-family font-size font-size-adjust font-stretch font-style font-variant font-weight
    glyph-orientation-horizontal glyph-orientation-vertical image-rendering kerning letter-spacing
    lighting-color marker-end marker-mid marker-start mask opacity overflow paint-order
    pointer-events shape-rendering stop-color stop-opacity stroke stroke-dasharray
    stroke-dashoffset stroke-linecap stroke-linejoin stroke-miterlimit stroke-opacity
    stroke-width text-anchor text-decoration text-rendering unicode-bidi vector-effect visibility
    word-spacing writing-mode mix-blend-mode isolation transform-origin transform-box"""
ATTRIBUTES = frozenset(_ATTRIBUTE_NAMES.split())
LINK_ATTRIBUTES = frozenset({"href"})
# Animations may not change these (a link, or where an animation points).
UNANIMATABLE = frozenset({"href", "xlink:href", "style", "attributename", "begin", "end"})

_EMBEDDED_IMAGES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;")
_INVISIBLE = re.compile(r"[\s\x00-\x1f]+")
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)
_CSS_HEX_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?")
_CSS_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_CSS_FUNCTIONS_THAT_LOAD = ("@import", "image(", "image-set(", "cross-fade(", "element(", "expression(", "src(")


class UnsafeSvg(Exception):
    """The SVG holds something outside the allow-list; the message says what (for the log)."""


def _split(name: str) -> tuple[str, str]:
    """ "{namespace}tag" -> ("namespace", "tag")."""
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _hex_character(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def css_text(css: str) -> str:
    """CSS as a browser reads it: comments dropped, escapes decoded."""
    css = _CSS_COMMENT.sub("", css)
    css = _CSS_HEX_ESCAPE.sub(_hex_character, css)
    return _CSS_ESCAPE.sub(lambda match: match.group(1), css)


def safe_reference(value: str) -> bool:
    value = _INVISIBLE.sub("", value).lower()
    return value.startswith("#") or value.startswith(_EMBEDDED_IMAGES)


def check_css(css: str) -> None:
    decoded = css_text(css)
    flat = _INVISIBLE.sub("", decoded).lower()
    if any(function in flat for function in _CSS_FUNCTIONS_THAT_LOAD) or "javascript:" in flat:
        raise UnsafeSvg("CSS that loads or runs something")
    if flat.count("url(") != len(references := _CSS_URL.findall(decoded)):
        raise UnsafeSvg("a CSS url() that cannot be read")
    if not all(safe_reference(url) for _, url in references):
        raise UnsafeSvg("a CSS url() to another file")


def _check_attribute(tag: str, name: str, value: str) -> None:
    namespace, local = _split(name)
    if namespace in METADATA_NAMESPACES:
        return
    if namespace == XLINK_NS and local == "href" or not namespace and local in LINK_ATTRIBUTES:
        if not safe_reference(value):
            raise UnsafeSvg(f"a link to another file on <{tag}>")
        return
    if namespace == XML_NS and local in ("space", "lang"):
        return
    if namespace or local not in ATTRIBUTES:
        raise UnsafeSvg(f"the attribute {local} on <{tag}>")
    if tag in ANIMATIONS and local == "attributeName" and value.strip().lower() in UNANIMATABLE:
        raise UnsafeSvg(f"<{tag}> changing {value}")
    check_css(value)


def check(root: ElementTree.Element) -> None:
    """Raise UnsafeSvg unless every element and attribute under `root` is allowed."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        namespace, tag = _split(element.tag)
        if namespace in METADATA_NAMESPACES:
            if element.attrib.get("style") or any(_split(name)[1].lower().startswith("on") for name in element.attrib):
                raise UnsafeSvg(f"styles or handlers on <{tag}>")
            continue
        if namespace != SVG_NS or tag not in ELEMENTS:
            raise UnsafeSvg(f"the element <{tag}>")
        for name, value in element.attrib.items():
            _check_attribute(tag, name, value)
        if tag == "style":
            check_css("".join(element.itertext()))
