from wxloop.domain.phone import is_phone, mask


def test_mask_keeps_three_and_four_digits():
    assert mask("13812341234") == "138****1234"
    assert mask("+8613812341234") == "+861******1234"


def test_short_and_bad_numbers_never_echo():
    assert mask("12345") == "***45"
    assert mask("not a phone") == "****"
    assert mask("1381234123412341234123") == "****"
    assert not is_phone(None)
