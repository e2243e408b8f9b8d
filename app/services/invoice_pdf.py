"""The invoice PDF (fpdf2): seller and buyer, invoice address and PO number, the customer's tax
registrations, line items and totals. It renders a document whose texts are ready to print, so
the same invoice always gives the same content."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

# DejaVu Sans prints any script an address may hold; Debian's fonts-dejavu-core puts it here.
# Without it the PDF falls back to Helvetica, which only has Windows-1252 (Latin-1, dashes, €).
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


@dataclass(frozen=True)
class PdfLine:
    description: str
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class InvoiceDocument:
    title: str
    number: str
    facts: list[tuple[str, str]]
    seller: list[str]
    buyer: list[str]
    tax_registrations: list[str]
    lines: list[PdfLine]
    totals: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def _font(pdf: FPDF) -> str:
    for folder in _FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            return "DejaVu"
    return "Helvetica"


def render(doc: InvoiceDocument) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(f"{doc.title} {doc.number}")
    pdf.set_author(doc.seller[0] if doc.seller else "")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    family = _font(pdf)

    if family == "Helvetica":
        pdf.core_fonts_encoding = "windows-1252"

    def text(value: str) -> str:
        # Helvetica cannot print what Windows-1252 lacks; DejaVu can.
        return value if family == "DejaVu" else value.encode("windows-1252", "replace").decode("windows-1252")

    def block(title: str, lines: list[str], x: float, y: float, width: float) -> float:
        pdf.set_xy(x, y)
        pdf.set_font(family, "B", 9)
        pdf.cell(width, 5, text(title), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font(family, "", 9)
        for line in lines:
            pdf.set_x(x)
            pdf.multi_cell(width, 4.5, text(line), new_x=XPos.LEFT, new_y=YPos.NEXT)
        return pdf.get_y()

    pdf.set_font(family, "B", 20)
    pdf.cell(0, 10, text(doc.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(family, "", 9)
    for label, value in doc.facts:
        pdf.set_font(family, "B", 9)
        pdf.cell(38, 5, text(label))
        pdf.set_font(family, "", 9)
        pdf.cell(0, 5, text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    top = pdf.get_y()
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    bottom_seller = block("From", doc.seller, pdf.l_margin, top, half - 6)
    buyer = doc.buyer + (["", "Tax registrations:", *doc.tax_registrations] if doc.tax_registrations else [])
    bottom_buyer = block("Bill to", buyer, pdf.l_margin + half, top, half)
    pdf.set_xy(pdf.l_margin, max(bottom_seller, bottom_buyer) + 6)

    pdf.set_font(family, "", 9)
    with pdf.table(
        col_widths=(100, 18, 28, 28),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=6,
        first_row_as_headings=True,
    ) as table:
        table.row([text(h) for h in ("Description", "Qty", "Unit price", "Amount")])
        for line in doc.lines:
            table.row([text(line.description), line.quantity, text(line.unit_price), text(line.amount)])
    pdf.ln(3)

    for label, value in doc.totals:
        pdf.set_font(family, "B" if label.startswith(("Total", "Amount")) else "", 10)
        pdf.cell(pdf.w - pdf.l_margin - pdf.r_margin - 40, 6, text(label), align="R")
        pdf.cell(40, 6, text(value), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    if doc.notes:
        pdf.ln(6)
        pdf.set_font(family, "", 8)
        for note in doc.notes:
            pdf.multi_cell(0, 4.5, text(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
