"""Sniff the text encoding of a file from its first bytes, or tell that it is not text at all.

The order matters: a byte-order mark is proof; binary data is told apart next (charset_normalizer
would happily "decode" a PNG); valid UTF-8 is almost proof (legacy 8-bit text with any accented
letter is practically never valid UTF-8); only then is charset_normalizer's statistical guess
asked. Its guess is used only when no rival decoding is as clean, and checked against what it
gets wrong on short, mostly-ASCII Western text (a DOS code page, "Korean" from one ’ byte), where
cp1252 is taken when the sample reads as Western European text. What stays ambiguous is an error
asking for --encoding rather than a silent mojibake.
"""

from __future__ import annotations

import codecs

from components.common.errors import BadInputError

# UTF-32 first: its little-endian BOM starts with UTF-16's (FF FE).
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Formats people drop into a folder of documents; checked first because some (a PDF) start with
# readable ASCII that the byte statistics below would take for text.
BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "an executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
)
# C0 control bytes (and DEL) that text does not contain. Tab, line feed, vertical tab, form feed,
# carriage return and escape (ISO-2022-JP switches character sets with it) are left out.
CONTROL_BYTES = bytes(sorted(set(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B} | {0x7F}))
# Text in any encoding has (almost) no other control bytes; random or compressed data has ~10%.
MAX_CONTROL_SHARE = 0.05
# A sample this long whose only non-ASCII bytes are an incomplete UTF-8 character at its end was
# most likely cut by the reader; a shorter one is more likely a whole legacy file ending in "é".
MIN_CUT_SAMPLE = 4096
# UTF-16 without a BOM is checked character by character on this much of the sample.
UTF16_CHECKED_BYTES = 65536
# Two guesses whose mess ratios differ by less than this are taken as a tie.
CHAOS_TIE = 0.005
CHAOS_CLOSE = 0.1
# cp1252 is by far the most common legacy encoding of Western text; on a tie charset_normalizer
# often ranks a rarer code page first, one that turns "fenêtre" into "fenętre".
WESTERN = "cp1252"
# Python codec names (codecs.lookup(...).name) of the encodings files are still written in.
USUAL_PREFIXES = ("cp125", "iso8859-", "koi8-", "utf-16", "utf-32", "iso2022")
MULTI_BYTE = frozenset(
    ("cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004",
     "euc_jisx0213", "gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp950", "cp949",
     "euc_kr", "johab")
)  # fmt: skip
# Latin-1 symbols (¡ ¿ « ° ...) stand between words, never inside one; the no-break space and
# the soft hyphen may join two letters.
LATIN1_SYMBOLS = frozenset(chr(code) for code in range(0xA1, 0xC0)) - {"\xad"} | {"×", "÷"}
# The non-ASCII characters of Western European text in cp1252: Latin-1 letters except the
# Icelandic ð þ ý (what Turkish ğ ş ı become when read as cp1252), Latin-1 symbols, and the
# letters and punctuation cp1252 puts in 0x80-0x9F (€ ’ “ ” – — … œ š ž ™ ...).
WESTERN_CHARS = frozenset(bytes(range(0x80, 0x100)).decode(WESTERN, errors="ignore")) - set(
    "ðÐþÞýÝ"
)
# Accented letters in French, German, Spanish... are well under a third of all letters.
MAX_ACCENTED_SHARE = 0.3


def sniff_encoding(sample: bytes, source: str) -> str:
    """The Python codec name of the text whose first bytes are `sample` (up to ~1 MB).

    A BOM decides first ("utf-8-sig", "utf-16", "utf-32": those codecs strip it); then valid
    UTF-8, an incomplete character cut off at the end of the sample allowed ("utf-8"); then
    UTF-32 or UTF-16 without a BOM told by where its NUL bytes sit; then charset_normalizer's
    guess or cp1252 (see guess_legacy_encoding). The name is Python's: "cp1252", "cp932",
    "iso8859-2"... BadInputError when the sample looks binary or the bytes do not tell the
    encoding."""
    for mark, encoding in BYTE_ORDER_MARKS:
        if sample.startswith(mark):
            return encoding
    reason = binary_reason(sample)
    if reason is not None:
        raise BadInputError(f"--data file {source!r} looks binary, not text: {reason}")
    wide = wide_without_bom(sample)
    if wide is not None:
        return wide
    if b"\x1b$" in sample or b"\x1b(" in sample:
        # ISO-2022 (Japanese mail) is 7-bit, so valid UTF-8 too; its escapes give it away.
        iso2022 = guess_legacy_encoding(sample)
        if iso2022 is not None and iso2022.startswith("iso2022"):
            return iso2022
    if is_utf8(sample):
        return "utf-8"
    guess = guess_legacy_encoding(sample)
    if guess is None:
        raise BadInputError(
            f"--data file {source!r} is not UTF-8 and its encoding cannot be sniffed; "
            "pass --encoding (e.g. --encoding cp1252)"
        )
    return guess


def looks_binary(sample: bytes) -> bool:
    """True when the bytes are not text in any encoding (an image, an archive, random data)."""
    return binary_reason(sample) is not None


def binary_reason(sample: bytes) -> str | None:
    """Why the bytes look binary, in a few words; None when they may be text."""
    if any(sample.startswith(mark) for mark, _ in BYTE_ORDER_MARKS):
        return None
    for signature, what in BINARY_SIGNATURES:
        if sample.startswith(signature):
            return f"it starts like {what}"
    if wide_without_bom(sample) is not None:
        return None  # its bytes are half NULs, and CJK code units often fall in the C0 range
    if b"\x00" in sample:
        # The rule git uses: text other than UTF-16/32 never holds a NUL byte.
        return "it holds NUL bytes"
    controls = len(sample) - len(sample.translate(None, CONTROL_BYTES))
    if sample and controls / len(sample) > MAX_CONTROL_SHARE:
        return f"{controls / len(sample):.0%} of its bytes are control characters"
    return None


def is_utf8(sample: bytes) -> bool:
    """True when `sample` is strict UTF-8, allowing an incomplete character at its very end
    when the sample was probably cut there (it is the head of a file)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        text = decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    cut_tail = decoder.getstate()[0]
    if not cut_tail:
        return True
    # b"caf\xe9" is cp1252 "café" as well as UTF-8 cut mid-character: only accept the cut when
    # the rest already proves UTF-8 (a multi-byte character) or the sample is long.
    return not text.isascii() or len(sample) >= MIN_CUT_SAMPLE


def wide_without_bom(sample: bytes) -> str | None:
    """The codec of UTF-32 or UTF-16 text without a BOM, else None."""
    return utf32_without_bom(sample) or utf16_without_bom(sample)


def utf32_without_bom(sample: bytes) -> str | None:
    """The codec of UTF-32 text without a BOM ("utf-32-le" or "utf-32-be"), else None: at least
    half of the bytes are NULs, the sample decodes strictly (random bytes name code points past
    U+10FFFF) and nearly all it decodes to is printable."""
    sample = sample[:UTF16_CHECKED_BYTES]
    sample = sample[: len(sample) - len(sample) % 4]
    if not sample or sample.count(0) < len(sample) / 2:
        return None
    for encoding in ("utf-32-le", "utf-32-be"):
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        printable = sum(char.isprintable() or char.isspace() for char in text)
        if text and printable / len(text) >= 0.95:
            return encoding
    return None


def utf16_without_bom(sample: bytes) -> str | None:
    """The codec of UTF-16 text without a BOM ("utf-16-le" or "utf-16-be"), else None.

    Text that is mostly Latin, digits or punctuation puts a NUL in every other byte, all on the
    odd positions (little-endian) or all on the even ones (big-endian); random bytes scatter
    their NULs. The decoded text must also be clean: random data decodes to unpaired
    surrogates and unassigned characters. The first 64 KiB decide (the check is per character)."""
    sample = sample[:UTF16_CHECKED_BYTES]
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    if even_nuls == odd_nuls:  # none at all, or no side preferred
        return None
    encoding = "utf-16-le" if odd_nuls > even_nuls else "utf-16-be"
    if min(even_nuls, odd_nuls) > 0.05 * max(even_nuls, odd_nuls):
        return None
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        text = decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    printable = sum(char.isprintable() or char.isspace() for char in text)
    return encoding if text and printable / len(text) >= 0.95 else None


def guess_legacy_encoding(sample: bytes) -> str | None:
    """The encoding of text that is not UTF-8, as a Python codec name; None when the bytes do
    not tell.

    charset_normalizer's guess is taken when it is an encoding files are still written in and
    the text does not read as Western European (cp1257 and cp1252 decode "café" alike but not
    "naïve déjà"); a DOS or Mac code page, or East Asian characters scattered one by one among
    ASCII words, is what it says about a mostly-ASCII sample with a few cp1252 bytes ("I\x92m"
    read as Korean), so then cp1252 is taken if it reads as Western text, and otherwise the
    user is asked for --encoding rather than handed mojibake."""
    guess = charset_normalizer_guess(sample)
    single_byte = guess is not None and guess not in MULTI_BYTE and not guess.startswith("utf-")
    if single_byte and guess != WESTERN and reads_as_western(sample):
        return WESTERN
    if guess is not None and is_usual_guess(guess, sample):
        return guess
    if reads_as_western(sample):
        return WESTERN
    return None


def charset_normalizer_guess(sample: bytes) -> str | None:
    """charset_normalizer's best guess as a Python codec name, or None when nothing decodes
    cleanly (its own mess cut-off, 0.2) or a rival decoding is as clean and as coherent."""
    from charset_normalizer import from_bytes

    matches = []
    # A multi-byte character (Shift JIS, GBK...) cut off at the end of the sample makes every
    # decoding fail; the sample minus its last 1 to 3 bytes is tried before giving up.
    for cut in range(4):
        matches = list(from_bytes(sample[: len(sample) - cut]))
        if matches or len(sample) <= cut + 1:
            break
    if not matches:
        return None
    best = matches[0]
    # An unusual code page a shade cleaner than a usual one that reads more like a language
    # (mac-cyrillic over cp1251 for Russian) loses to it.
    close = [m for m in matches if m.chaos <= best.chaos + CHAOS_CLOSE]
    usual = [m for m in close if codecs.lookup(m.encoding).name.startswith(USUAL_PREFIXES)]
    if usual and not codecs.lookup(best.encoding).name.startswith(USUAL_PREFIXES):
        best = max(usual, key=lambda m: m.coherence)
    tied = [
        match for match in matches if match.chaos <= best.chaos + CHAOS_TIE and match is not best
    ]
    tied.insert(0, best)
    # could_be_from_charset lists the code pages that decode the sample to the very same text.
    if any(WESTERN in match.could_be_from_charset for match in tied):
        # A tie with cp1252 on text that does not read as Western ("Dzieñ dobry, by³o mi³o" is
        # Polish in cp1250) is a tie the bytes cannot break.
        return WESTERN if reads_as_western(sample) else None
    # Each match decodes to a different text. A rival as clean and as much like a language as
    # the best one means the bytes do not tell (a few Cyrillic or Greek letters fit a dozen code
    # pages): better to ask for --encoding than to train on mojibake.
    if any(rival.coherence >= best.coherence for rival in tied[1:]):
        return None
    if best.encoding.startswith(("utf_16", "utf_32")) and best.language == "Unknown":
        # With no NUL bytes (checked before) and no language recognised, "UTF-16" is a guess
        # that a handful of 8-bit bytes happen to pair into CJK characters.
        return None
    return codecs.lookup(best.encoding).name


def is_usual_guess(encoding: str, sample: bytes) -> bool:
    """True for an encoding text files are still written in (Windows and ISO code pages, KOI8,
    UTF-16/32, ISO-2022) and for an East Asian one whose characters come in runs, as CJK text
    (written without spaces) has them."""
    if encoding.startswith(USUAL_PREFIXES):
        return True
    if encoding not in MULTI_BYTE:
        return False
    text = sample.decode(encoding, errors="ignore")
    wide = [index for index, char in enumerate(text) if not char.isascii()]
    in_runs = sum(
        (index > 0 and not text[index - 1].isascii())
        or (index + 1 < len(text) and not text[index + 1].isascii())
        for index in wide
    )
    return bool(wide) and in_runs >= len(wide) / 2


def reads_as_western(sample: bytes) -> bool:
    """True when cp1252 turns the bytes into plausible Western European text: letters and
    punctuation of those languages only, accents on a minority of the letters (Cyrillic or
    Greek read as cp1252 is all accented letters), and no Latin-1 symbol inside a word (Polish
    "Zażółć" read as cp1252 is "Za¿ó³æ")."""
    try:
        text = sample.decode(WESTERN)
    except UnicodeDecodeError:  # a byte cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D)
        return False
    foreign = [(index, char) for index, char in enumerate(text) if not char.isascii()]
    if not foreign or any(char not in WESTERN_CHARS for _, char in foreign):
        return False
    letters = sum(char.isalpha() for char in text)
    accented = sum(char.isalpha() for _, char in foreign)
    if accented > MAX_ACCENTED_SHARE * letters:
        return False
    return not any(
        char in LATIN1_SYMBOLS
        and 0 < index < len(text) - 1
        and text[index - 1].isalpha()
        and text[index + 1].isalpha()
        for index, char in foreign
    )
