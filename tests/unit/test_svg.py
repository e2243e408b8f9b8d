"""The SVG allow-list (app/services/svg.py) as a logo or profile picture meets it: what is not known
to be inert is refused, whatever its spelling, and what drawing programs export is kept."""

import pytest

from app.errors import ValidationFailed
from app.services import company


def _svg(body: str, extra: str = "") -> bytes:
    namespaces = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
    return f"<svg {namespaces}{extra}>{body}</svg>".encode()


@pytest.mark.parametrize(
    "unsafe",
    [
        _svg("<a><animate attributeName='href' values='javascript:alert(1)'/><rect width='1' height='1'/></a>"),
        _svg("<a><set attributeName='href' to='#x'/><rect width='1' height='1'/></a>"),
        _svg("<rect width='1' height='1' onclick='alert(1)'/>"),
        _svg("<script>alert(1)</script>"),
        _svg("<foreignObject><div xmlns='http://www.w3.org/1999/xhtml'>hi</div></foreignObject>"),
        _svg("<use href='#r'><set attributeName='xlink:href' to='https://evil.example/x.svg#r'/></use>"),
        _svg("<rect width='1' height='1'><animate attributeName='fill' to='url(https://evil.example/p#g)'/></rect>"),
        _svg("<style>@\\69mport 'https://evil.example/x.css';</style>"),
        _svg("<style>@im/**/port 'https://evil.example/x.css';</style>"),
        _svg("<style>rect { fill: \\75 rl(https://evil.example/p.svg#g) }</style>"),
        _svg("<rect style='fill: u\\rl(https://evil.example/p.svg#g)' width='1' height='1'/>"),
        _svg("<rect fill='url(https://evil.example/p.svg#g)' width='1' height='1'/>"),
        _svg("<rect cursor='url(https://evil.example/c.cur), auto' width='1' height='1'/>"),
        _svg("<filter id='f'><feImage href='https://evil.example/x.png'/></filter>"),
        _svg("<iframe src='https://evil.example/'/>"),
        _svg("<discard begin='0s'/>"),
        _svg("<math xmlns='http://www.w3.org/1998/Math/MathML'><mi>x</mi></math>"),
        _svg("<x:thing xmlns:x='urn:example:unknown'/>"),
        _svg("<rect width='1' height='1' xml:base='https://evil.example/'/>"),
        _svg("<a href='https://evil.example/'><rect width='1' height='1'/></a>"),
    ],
)
def test_svgs_outside_the_allow_list_are_refused(unsafe):
    with pytest.raises(ValidationFailed, match="scripts, event handlers or links") as refused:
        company.logo_kind(unsafe)
    assert refused.value.field == "logo"


def test_svgs_as_drawing_programs_export_them_are_accepted():
    """Inkscape's metadata and namespaced attributes, CSS classes, internal references, an
    embedded PNG and an animated rotation."""
    logo = _svg(
        "<sodipodi:namedview xmlns:sodipodi='http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd'"
        " xmlns:inkscape='http://www.inkscape.org/namespaces/inkscape' inkscape:zoom='1.5' pagecolor='#fff'/>"
        "<defs><linearGradient id='g'><stop offset='0' stop-color='#fff'/></linearGradient></defs>"
        "<style>.mark { fill: #3e63dd; stroke: url( '#g' ) } /* brand */</style>"
        "<g id='layer1' inkscape:label='Layer 1' xmlns:inkscape='http://www.inkscape.org/namespaces/inkscape'>"
        "<path class='mark' d='M0 0h10v10z' stroke-width='0.5' fill-rule='evenodd'/>"
        "<text x='1' y='9' font-family='Inter, sans-serif' font-size='4' xml:space='preserve'>LD</text>"
        "<use xlink:href='#layer1' x='1'/><image href='data:image/png;base64,iVBORw0KGgo=' width='1' height='1'/>"
        "<circle cx='5' cy='5' r='2' fill='url(#g)'><animateTransform attributeName='transform' type='rotate'"
        " from='0 5 5' to='360 5 5' dur='2s' repeatCount='indefinite'/></circle></g>",
        " viewBox='0 0 10 10' width='100' height='100' version='1.1'",
    )
    assert company.logo_kind(logo) == "svg"
