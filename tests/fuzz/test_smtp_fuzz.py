"""Property tests for the SMTP primitives: path and parameter parsing, DATA framing.

No input may raise anything but the declared error types (AddressError, ParamError), and the
DATA reader must give back exactly the message, however the stream is cut (RFC 5321 §4.5.2).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mox.smtp.address import AddressError, parse_mailbox, parse_path
from mox.smtp.data import DataReader
from mox.smtp.params import ParamError, parse_params, xtext_decode, xtext_encode

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text biased towards the characters that matter to the grammar.
grammar_text = st.text(
    alphabet=st.sampled_from(list('<>@:.,"\\[]+= -_aZ09é\x00\x7f\r\n\t')) | st.characters(),
    max_size=80,
)
atext = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~", min_size=1)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@FUZZ
@given(grammar_text, st.booleans(), st.booleans())
def test_parse_path_raises_only_address_error(text: str, utf8: bool, allow_null: bool) -> None:
    try:
        addr, rest = parse_path(text, utf8=utf8, allow_null=allow_null)
    except AddressError:
        return
    assert text.startswith("<")
    if addr is not None:
        assert "@" in str(addr)
        assert rest == rest.strip()


@FUZZ
@given(st.lists(atext, min_size=1, max_size=3), st.lists(label, min_size=2, max_size=4))
def test_valid_mailbox_round_trips(local: list[str], labels: list[str]) -> None:
    text = ".".join(local) + "@" + ".".join(labels)
    addr = parse_mailbox(text)
    assert parse_mailbox(str(addr)) == addr
    again, rest = parse_path(f"<{addr}> SIZE=10")
    assert again == addr
    assert rest == "SIZE=10"


@FUZZ
@given(grammar_text)
def test_parse_params_raises_only_param_error(text: str) -> None:
    try:
        params = parse_params(text)
    except ParamError:
        return
    for key, value in params:
        assert key == key.upper()
        assert key
        assert value is None or (value and "=" not in value)


@FUZZ
@given(st.text(max_size=60))
def test_xtext_round_trip_and_decode_errors(text: str) -> None:
    encoded = xtext_encode(text)
    assert xtext_decode(encoded) == text
    try:
        xtext_decode(text)
    except ParamError:
        pass


def stuffed_lines(message: bytes) -> list[bytes]:
    """The message as a client sends it: dot-stuffed CRLF lines, then the terminator."""
    lines = [b"." + line if line.startswith(b".") else line for line in message.split(b"\r\n")]
    return [line + b"\r\n" for line in lines] + [b".\r\n"]


def feed_in_pieces(reader: DataReader, lines: list[bytes], cuts: list[int]) -> None:
    """Feed each line, long ones cut into pieces (complete=False) as a line reader with a length
    limit hands them over; the limit (here 3 or more) never cuts the 3-octet terminator."""
    for i, line in enumerate(lines):
        cut = cuts[i % len(cuts)] if cuts else 0
        while cut and len(line) > cut and not reader.done:
            reader.feed(line[:cut], False)
            line = line[cut:]
        if not reader.done:
            reader.feed(line, True)


body_lines = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    min_size=1,
    max_size=20,
)


@FUZZ
@given(body_lines, st.lists(st.integers(3, 50), max_size=5))
def test_data_framing_is_exact_however_the_stream_is_cut(
    lines: list[bytes], cuts: list[int]
) -> None:
    message = b"\r\n".join(lines)
    reader = DataReader(10_000_000)
    feed_in_pieces(reader, stuffed_lines(message), cuts)
    assert reader.done
    assert not reader.bare_cr_lf
    assert reader.result() == message + b"\r\n"


@FUZZ
@given(st.lists(st.binary(max_size=60), max_size=30), st.integers(1, 200))
def test_data_reader_on_random_bytes(pieces: list[bytes], max_size: int) -> None:
    reader = DataReader(max_size)
    for piece in pieces:
        if reader.done:
            break
        reader.feed(piece, piece.endswith(b"\n"))
    # Bounded memory: never more than the limit is kept.
    assert len(reader.result()) <= max_size
    if reader.too_big:
        assert reader.result() == b""
