"""Identities and file names derived from user-supplied names."""

from jcsr_bench.kit.identity import digest, make_identity, safe_filename


def test_identity_covers_every_field_and_is_order_independent():
    assert make_identity("x", a=1, b=[2, 3]) == make_identity("x", b=[2, 3], a=1)
    assert make_identity("x", a=1) != make_identity("x", a=2)
    assert make_identity("x", a=1).startswith("x:")
    assert digest(b"abc") == digest("abc")


def test_safe_filename_keeps_plain_names_and_never_escapes_or_collides():
    assert safe_filename("jpeg+bicubic") == "jpeg+bicubic"
    assert safe_filename("samples-test") == "samples-test"
    for hostile in ("../../etc/passwd", "..", "/abs/path", "a/b", "a\\b", "", "name\nx"):
        name = safe_filename(hostile)
        assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
    assert safe_filename("a|b") != safe_filename("a_b")  # changed names carry a hash
    assert len(safe_filename("x" * 500)) <= 60 + 9
