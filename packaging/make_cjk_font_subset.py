"""Make resources/fonts/NotoSansCJKsc-Subset.otf, the PDF report's fallback font for Chinese, Japanese and Korean.

Source: Noto Sans CJK SC Regular (SIL OFL 1.1) from Debian's ``fonts-noto-cjk`` (the .ttc, face 2). The full
font has 65,535 glyphs (16 MB); the subset keeps the characters of GB2312, JIS X 0208 (levels 1 and 2), Big5
level 1 (frequent Traditional Chinese), the Hangul syllables of KS X 1001, CJK punctuation, kana, Hangul jamo
and full-width forms: about 13,700 characters in 2.7 MB. Characters outside it are rare in customer messages;
the PDF drops them rather than print empty boxes.

Usage: ``python packaging/make_cjk_font_subset.py /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc``
(needs fontTools, which fpdf2 installs).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parent.parent / "resources" / "fonts" / "NotoSansCJKsc-Subset.otf"
SC_FACE = 2  # JP, KR, SC, TC, HK, then the Mono faces


def _double_byte(codec: str, leads: range, trails: list[int]) -> set[int]:
    out: set[int] = set()
    for lead in leads:
        for trail in trails:
            try:
                text = bytes([lead, trail]).decode(codec)
            except UnicodeDecodeError:
                continue
            if len(text) == 1:
                out.add(ord(text))
    return out


def characters() -> set[int]:
    """The code points kept, from the national standards' character sets (Python's codecs list them)."""
    high = list(range(0xA1, 0xFF))
    chars = _double_byte("gb2312", range(0xA1, 0xF8), high)
    chars |= _double_byte("euc_jp", range(0xA1, 0xF5), high)
    chars |= _double_byte("big5", range(0xA1, 0xC7), [*range(0x40, 0x7F), *high])  # level 1 ends at 0xC67E
    chars |= _double_byte("euc_kr", range(0xB0, 0xC9), high)  # the 2,350 Hangul syllables of KS X 1001
    chars |= set(range(0x3000, 0x3100)) | set(range(0x3130, 0x3190)) | set(range(0xFF00, 0xFFF0))
    return chars


def main(source: str) -> None:
    font = TTFont(source, fontNumber=SC_FACE)
    cmap = font.getBestCmap()
    options = subset.Options()
    options.layout_features = []  # fpdf2 places glyphs by the cmap: no shaping features needed
    options.hinting = False
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["vhea", "vmtx", "VORG", "DSIG", "GSUB", "GPOS"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(c for c in characters() if c in cmap))
    subsetter.subset(font)
    font.save(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
