"""Fuzzing the file readers of ingest: whatever bytes sit in a .csv, .tsv, .json, .jsonl,
.parquet, .csv.gz or .xlsx file, `read_table` returns a table (string column names, at least one
column and one row) or raises BadInputError, the error the CLI turns into exit code 2 and one
line. Any other exception would surface as a traceback and exit code 1.

Inputs: random bytes (behind the magic numbers readers look for), CSV-like text built from random
cells, delimiters, quotes, newlines, BOMs and encodings, JSON values, and mutations (truncation,
flipped bytes, cut or repeated spans) of real files holding the titanic data. A well-formed CSV
that pandas writes must read back with the same shape, column names and values.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import math
import tempfile
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.common.errors import BadInputError
from components.core.source.files import SNIFFED_DELIMITERS, read_table

SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".csv.gz", ".xlsx")
# A hang fails the test instead of the whole suite waiting for pytest-timeout's 900 s.
pytestmark = [
    pytest.mark.timeout(180),
    # pandas' own deprecation notice while reading ragged JSON: noise here, not a finding
    pytest.mark.filterwarnings("ignore:Constructing a DataFrame from a list of sequences"),
]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Beginnings that send a reader down a deeper path than plain noise does.
MAGIC_PREFIXES = (
    b"",
    b"PAR1",
    b"PK\x03\x04",
    b"\x1f\x8b\x08\x00",
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
    codecs.BOM_UTF32_LE,
    b"{",
    b"[",
    b'[{"a": ',
    b"a,b\n",
    b'"',
)


def read_bytes(data: bytes, suffix: str) -> pd.DataFrame | None:
    """`data` written to a fresh file ending in `suffix` and read; None for BadInputError.
    Each call gets its own folder (hypothesis runs many examples in one test function)."""
    with tempfile.TemporaryDirectory(prefix="stablepipe-fuzz-") as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(data)
        try:
            frame = read_table(str(path))
        except BadInputError as error:
            assert str(error).strip(), "a BadInputError needs a message"
            assert "\n" not in str(error).strip(), f"message is not one line: {error}"
            return None
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape[0] >= 1 and frame.shape[1] >= 1, frame.shape
    assert all(isinstance(name, str) for name in frame.columns), list(frame.columns)
    assert frame.columns.is_unique, list(frame.columns)
    return frame


# ---------------------------------------------------------------- (a) random bytes


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(prefix=st.sampled_from(MAGIC_PREFIXES), body=st.binary(max_size=2048))
def test_random_bytes_are_a_table_or_bad_input(suffix: str, prefix: bytes, body: bytes) -> None:
    read_bytes(prefix + body, suffix)


@FUZZ
@given(body=st.binary(min_size=1, max_size=4096))
def test_gzip_of_random_bytes_is_a_table_or_bad_input(body: bytes) -> None:
    """A valid gzip stream around noise reaches the CSV reader, not only the gzip layer."""
    read_bytes(gzip.compress(body, mtime=0), ".csv.gz")


# ---------------------------------------------------------------- (b) CSV-like and JSON text

CELL_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",;\t|\"'\n\r \\")),
        st.characters(codec="utf-8"),  # no lone surrogates
        st.sampled_from(list("éüßçñ€’“”—ØÆÅабвгдΣΩ日本語")),
    ),
    max_size=12,
)
CELL = st.one_of(
    CELL_TEXT,
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NA", "null", "nan", "True", "false", "2024-01-31", "1e400", "-0"]),
)


def quoted(cell: str, quote: str) -> str:
    return quote + cell.replace(quote, quote * 2) + quote if quote else cell


@st.composite
def csv_like(draw: st.DrawFn) -> bytes:
    """Delimited text: ragged rows, cells quoted or not, any line ending, a BOM or not, in one
    of the encodings CSV files come in."""
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = draw(st.integers(1, 6))
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        ragged = draw(st.integers(max(1, width - 2), width + 2))
        row_width = draw(st.sampled_from([width, width, width, ragged]))
        quote = draw(st.sampled_from(["", "", '"', "'"]))
        rows.append(sep.join(quoted(draw(CELL), quote) for _ in range(row_width)))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(rows) + draw(st.sampled_from([newline, ""]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "utf-16-le"]))
    return text.encode(encoding, errors="replace")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz"])
@settings(FUZZ, max_examples=200)
@given(data=csv_like())
@example(data=b'a,b\n1,"x')  # an unclosed quote at the end of the file
@example(data=b"a,b\n1,2,3\n4,5\n")  # a row with an extra field in the middle
@example(data="a;b\r\n\u00e9;\u20ac\r\n".encode("cp1252"))
def test_csv_like_text_is_a_table_or_bad_input(suffix: str, data: bytes) -> None:
    read_bytes(gzip.compress(data, mtime=0) if suffix.endswith(".gz") else data, suffix)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
RECORDS = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c", "0", "01", "1.0"]), JSON_SCALARS),
    min_size=1,
    max_size=5,
)


@FUZZ
@given(value=st.one_of(JSON_VALUES, RECORDS))
@example(value=[{"a": 1}, {"a": 2}])
def test_json_values_are_a_table_or_bad_input(value: object) -> None:
    read_bytes(json.dumps(value).encode(), ".json")


@FUZZ
@given(lines=st.lists(st.one_of(JSON_VALUES, RECORDS.map(lambda r: r[0])), min_size=1, max_size=6))
def test_json_lines_are_a_table_or_bad_input(lines: list[object]) -> None:
    read_bytes("\n".join(json.dumps(line) for line in lines).encode() + b"\n", ".jsonl")


# ---------------------------------------------------------------- (c) mutations of real files


def excel_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@cache
def real_files() -> dict[str, bytes]:
    """The titanic data (its first 150 rows: Excel is slow) in every format, as bytes. A cached
    function, not a fixture: hypothesis would print a fixture's value with every failure."""
    from tests.conftest import rdataset

    frame = rdataset("vcdExtra", "Titanicp").head(150)
    csv_text = frame.to_csv(index=False)
    records = frame.to_dict(orient="records")
    return {
        ".csv": csv_text.encode(),
        ".tsv": frame.to_csv(index=False, sep="\t").encode(),
        ".json": json.dumps(records).encode(),
        ".jsonl": "".join(json.dumps(record) + "\n" for record in records).encode(),
        ".parquet": parquet_bytes(frame),
        ".csv.gz": gzip.compress(csv_text.encode(), mtime=0),
        ".xlsx": excel_bytes(frame),
    }


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_the_real_files_read_as_they_are(suffix: str) -> None:
    frame = read_bytes(real_files()[suffix], suffix)
    assert frame is not None and frame.shape == (150, 6)


def truncate(data: bytes, offset: int) -> bytes:
    return data[: offset % (len(data) + 1)]


def flip(data: bytes, positions: list[int], masks: list[int]) -> bytes:
    mutated = bytearray(data)
    for position, mask in zip(positions, masks, strict=False):
        mutated[position % len(mutated)] ^= mask
    return bytes(mutated)


def cut_span(data: bytes, start: int, length: int) -> bytes:
    start %= len(data)
    return data[:start] + data[start + length :]


def repeat_span(data: bytes, start: int, length: int) -> bytes:
    start %= len(data)
    return data[: start + length] + data[start : start + length] + data[start + length :]


MUTATIONS: dict[str, Callable[[bytes, list[int], list[int]], bytes]] = {
    "truncate": lambda data, positions, _: truncate(data, positions[0]),
    "flip": flip,
    "cut": lambda data, positions, masks: cut_span(data, positions[0], masks[0]),
    "repeat": lambda data, positions, masks: repeat_span(data, positions[0], masks[0]),
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(
    mutation=st.sampled_from(sorted(MUTATIONS)),
    positions=st.lists(st.integers(0, 2**20), min_size=1, max_size=8),
    masks=st.lists(st.integers(1, 255), min_size=1, max_size=8),
)
def test_mutated_real_files_are_a_table_or_bad_input(
    suffix: str, mutation: str, positions: list[int], masks: list[int]
) -> None:
    read_bytes(MUTATIONS[mutation](real_files()[suffix], positions, masks), suffix)


# ---------------------------------------------------------------- a well-formed CSV round-trips

# Values pyarrow reads as missing; a text cell holding one of them reads back as NaN, not text.
NULL_SPELLINGS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"]
)  # fmt: skip
COLUMN_NAME = st.text(
    alphabet=st.characters(categories=("L", "N", "Zs", "P"), exclude_characters="\x85"),
    min_size=1,
    max_size=10,
).filter(lambda name: name.strip() and not name[0].isdigit() and name[0] not in "-+.")
TEXT_VALUE = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=10
).filter(lambda value: value.strip() not in NULL_SPELLINGS)


def no_delimiter(text: str) -> bool:
    return not any(sep in text for sep in SNIFFED_DELIMITERS)


@st.composite
def small_frames(draw: st.DrawFn) -> pd.DataFrame:
    """A frame of 1-8 rows whose columns hold integers, floats (with gaps), booleans or text."""
    names = draw(
        st.lists(COLUMN_NAME, min_size=1, max_size=5, unique=True).filter(
            lambda names: len(names) > 1 or no_delimiter(names[0])
        )
    )
    rows = draw(st.integers(1, 8))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(["int", "float", "bool", "text"]))
        if kind == "int":
            values: list[object] = draw(
                st.lists(st.integers(-(10**9), 10**9), min_size=rows, max_size=rows)
            )
        elif kind == "float":
            values = draw(
                st.lists(
                    st.none() | st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 6)),
                    min_size=rows,
                    max_size=rows,
                )
            )
        elif kind == "bool":
            values = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
        else:
            # In a one-column file every delimiter is as likely as another (",," under the
            # header "x" is a ragged comma CSV or one ";" column): its text holds none.
            text = TEXT_VALUE if len(names) > 1 else TEXT_VALUE.filter(no_delimiter)
            values = draw(st.lists(text, min_size=rows, max_size=rows))
        columns[name] = values
    return pd.DataFrame(columns)


# How pyarrow spells booleans: a column of only these is read as bool ("0" is False).
BOOLEAN_SPELLINGS = {True: {"1", "true"}, False: {"0", "false"}}


def same_value(written: object, read: object) -> bool:
    """Equal up to the type the reader inferred: numbers by value, booleans by spelling."""
    if written is None or (isinstance(written, float) and math.isnan(written)):
        return read is None or (isinstance(read, float) and math.isnan(read))
    if isinstance(read, bool):
        return str(written).lower() in BOOLEAN_SPELLINGS[read]
    if isinstance(written, bool):
        return str(written).lower() == str(read).lower()
    if isinstance(read, int | float):  # text of digits ("007") is read as a number: fine
        try:
            number = float(written)  # type: ignore[arg-type]
        except ValueError:
            return False
        return math.isclose(number, float(read), rel_tol=1e-9, abs_tol=1e-9)
    return str(written) == str(read)


@settings(FUZZ, max_examples=200)
@given(frame=small_frames(), sep=st.sampled_from([",", ";", "\t", "|"]))
@example(frame=pd.DataFrame({"name": ["a;b", "c;d"], "n": [1, 2]}), sep=",")
@example(frame=pd.DataFrame({"only": [1.0, None, 3.0]}), sep=",")
@example(frame=pd.DataFrame({"note": ["line one\nline two", "x"], "y": [1, 0]}), sep=",")
def test_a_csv_written_by_pandas_reads_back_the_same(frame: pd.DataFrame, sep: str) -> None:
    data = frame.to_csv(index=False, sep=sep).encode()
    read = read_bytes(data, ".csv")
    assert read is not None, data
    assert read.shape == frame.shape, (data, read)
    assert list(read.columns) == list(frame.columns), data
    for name in frame.columns:
        for written, got in zip(frame[name].tolist(), read[name].tolist(), strict=True):
            assert same_value(written, got), (name, written, got, data)


# ---------------------------------------------------------------- known bugs, one reproduction each


def read_or_bad_input(data: bytes, suffix: str) -> pd.DataFrame | None:
    """Like read_bytes, but without tolerating the known leaks: what the fixes must achieve."""
    with tempfile.TemporaryDirectory(prefix="stablepipe-fuzz-") as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(data)
        try:
            return read_table(str(path))
        except BadInputError:
            return None


def excel_with_sheet_xml(edit: Callable[[bytes], bytes]) -> bytes:
    """A real .xlsx whose sheet XML is passed through `edit` and zipped again properly."""
    original = zipfile.ZipFile(
        io.BytesIO(excel_bytes(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})))
    )
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in original.infolist():
            content = original.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = edit(content)
            archive.writestr(info, content)
    return rebuilt.getvalue()


def excel_with_corrupt_deflate() -> bytes:
    """A real .xlsx with the compressed bytes of its sheet scrambled (the zip directory intact)."""
    data = excel_bytes(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    scrambled = bytearray(data)
    for position in range(start + 2, start + info.compress_size - 2, 7):
        scrambled[position] ^= 0x55
    return bytes(scrambled)


def excel_with_compression_method(method: int) -> bytes:
    """A real .xlsx whose sheet claims compression `method` in its local and central headers."""
    data = bytearray(excel_bytes(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})))
    name = b"xl/worksheets/sheet1.xml"
    for signature, name_at, method_at in ((b"PK\x03\x04", 30, 8), (b"PK\x01\x02", 46, 10)):
        start = data.find(signature)
        while start != -1:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + method_at : start + method_at + 2] = method.to_bytes(2, "little")
            start = data.find(signature, start + 4)
    return bytes(data)


def parquet_footer_flips() -> list[bytes]:
    """A small Parquet file with one bit flipped, for every byte of its footer (the Thrift
    metadata and the base64 Arrow schema with pandas' metadata)."""
    data = parquet_bytes(pd.DataFrame({"n": [1, 2, 3], "s": ["x", "y", "z"]}))
    footer = int.from_bytes(data[-8:-4], "little")
    return [
        flip(data, [position], [1]) for position in range(len(data) - 8 - footer, len(data) - 8)
    ]


# Inputs whose reader errors used to escape as exceptions other than BadInputError (exit 1
# with a traceback); each must now be bad input.
LEAKS = {
    # zipfile.BadZipFile from openpyxl
    "xlsx that is not a zip": (b"pclass,survived\n1st,yes\n", ".xlsx"),
    # zlib.error from zipfile's inflate
    "xlsx with a scrambled sheet": (excel_with_corrupt_deflate(), ".xlsx"),
    # xml.etree.ElementTree.ParseError (a SyntaxError) from openpyxl
    "xlsx with malformed sheet xml": (
        excel_with_sheet_xml(lambda xml: xml.replace(b"<sheetData>", b"<sheetData><<")),
        ".xlsx",
    ),
    # NotImplementedError from zipfile
    "xlsx with an unknown compression method": (excel_with_compression_method(99), ".xlsx"),
    # TypeError from openpyxl (an attribute it does not know)
    "xlsx with a misspelt sheet attribute": (
        excel_with_sheet_xml(lambda xml: xml.replace(b"baseColWidth", b"baseCalWidth")),
        ".xlsx",
    ),
    # EOFError from gzip, raised while pyarrow reads the stream
    "truncated gzip": (gzip.compress(b"a,b\n" + b"1,2\n" * 100, mtime=0)[:-12], ".csv.gz"),
    # zlib.error from gzip
    "gzip with a corrupt deflate stream": (b"\x1f\x8b\x08\x00" + bytes(6) + b"B\x00", ".csv.gz"),
    # TypeError from pandas building a frame of a list of lists and scalars
    "json array of a list and null": (b"[[], null]", ".json"),
    "json lines of an object and null": (b"{}\nnull\n", ".jsonl"),
}


@pytest.mark.parametrize("case", list(LEAKS))
def test_reader_errors_become_bad_input(case: str) -> None:
    data, suffix = LEAKS[case]
    assert read_or_bad_input(data, suffix) is None


def test_every_single_bit_flip_of_a_parquet_footer_is_a_table_or_bad_input() -> None:
    for data in parquet_footer_flips():
        read_or_bad_input(data, ".parquet")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf16_or_utf32_csv_reads(encoding: str) -> None:
    frame = pd.DataFrame({"name": ["Zoë", "Åsa"], "score": [1, 2]})
    text = frame.to_csv(index=False)
    data = text.encode(encoding) if encoding != "utf-16-le" else ("\ufeff" + text).encode(encoding)
    read = read_or_bad_input(data, ".csv")
    assert read is not None and read.to_dict(orient="list") == frame.to_dict(orient="list")


def test_a_last_quoted_cell_with_a_newline_is_not_a_truncated_file() -> None:
    read = read_or_bad_input(b'y,note\n1,first\n0,"two\nlines"', ".csv")
    assert read is not None and read["note"].tolist() == ["first", "two\nlines"]


def test_a_truncated_csv_with_cr_line_ends_names_its_last_line() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mac.csv"
        path.write_bytes(b"a,b\r1,2\r3,4\r5")
        with pytest.raises(BadInputError, match=r"\(line 4\)"):
            read_table(str(path))


def test_a_repeated_excel_header_is_bad_input() -> None:
    data = excel_bytes(pd.DataFrame([[1, 2, "x"]], columns=["a", "a", "b"]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dup.xlsx"
        path.write_bytes(data)
        with pytest.raises(BadInputError, match="'a' twice"):
            read_table(str(path))


def test_a_parquet_index_column_is_kept() -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"id": [7, 8], "y": [0, 1]}).set_index("id").to_parquet(buffer)
    read = read_or_bad_input(buffer.getvalue(), ".parquet")
    assert read is not None and list(read.columns) == ["id", "y"]


RUSSIAN = pd.DataFrame(
    {
        "имя": [f"Иван Петров {i}" for i in range(40)],
        "город": ["Москва", "Киев", "Санкт-Петербург", "Новосибирск"] * 10,
        "доход": [i * 1000 for i in range(40)],
    }
)


# What hypothesis found writing cp1252 French (shrunk), and Russian in its two legacy encodings.
FRENCH = pd.DataFrame(
    {"text": ["café", "café café café café", "café café naïve déjà"], "y": [0, 1, 0]}
)
SHORT_RUSSIAN = pd.DataFrame({"name": ["Иван", "Пётр"], "city": ["Москва", "Киев"], "y": [1, 0]})


@pytest.mark.parametrize(
    ("frame", "encoding"),
    [(FRENCH, "cp1252"), (RUSSIAN, "cp1251"), (SHORT_RUSSIAN, "koi8-r")],
    ids=["cp1252 french", "cp1251 russian", "short koi8-r russian"],
)
def test_legacy_text_reads_right_or_asks_for_the_encoding(
    frame: pd.DataFrame, encoding: str
) -> None:
    read = read_or_bad_input(frame.to_csv(index=False).encode(encoding), ".csv")
    assert read is None or read.to_dict(orient="list") == frame.to_dict(orient="list")
