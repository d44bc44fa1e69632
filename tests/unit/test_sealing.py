"""Values sealed at rest (session keys, phone numbers): bound to their purpose, opened across key rotation."""

from wxloop.adapters.mp_store import seal, unseal

OLD, NEW = b"old-session-key-0123456789", b"new-session-key-0123456789"


def test_a_sealed_value_opens_with_its_aad_only():
    box = seal(b"13912345678", "phone|u1", [OLD])
    assert b"13912345678" not in box["c"]
    assert unseal(box, "phone|u1", [OLD]) == b"13912345678"
    assert unseal(box, "phone|u2", [OLD]) is None


def test_rotation_keeps_old_values_open_until_the_old_key_is_dropped():
    box = seal(b"k", "mpsk|a|o", [OLD])
    assert unseal(box, "mpsk|a|o", [NEW, OLD]) == b"k"
    assert unseal(box, "mpsk|a|o", [NEW]) is None
    assert seal(b"k", "x", [NEW, OLD])["k"] != box["k"]


def test_tampered_or_malformed_boxes_do_not_open():
    box = seal(b"k", "x", [OLD])
    flipped = {**box, "c": bytes([box["c"][0] ^ 1]) + box["c"][1:]}
    for bad in (flipped, {}, None, "text", {**box, "n": "not bytes"}):
        assert unseal(bad, "x", [OLD]) is None
