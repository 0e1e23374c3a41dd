"""Synthetic identities: names, phones, national ids, VINs, plates and tracker ids.

Every identifier carries the check digit of its standard, so that validators downstream are
exercised on realistic input: GB 11643 resident ids, GB 32100 unified social credit codes,
ISO 3779 VINs (North-American check digit, also used by GB 16735), Luhn IMEIs.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from lienwatch.domain.identifiers import resident_id_check, vin_check

# Common surnames, most frequent first, with rough relative frequencies (census order).
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_SURNAME_WEIGHTS = 1.0 / np.arange(1, len(_SURNAMES) + 1) ** 0.8
_GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉健俊"
    "浩宇轩子涵欣怡佳琪晨阳博文雨萱思远嘉懿梓睿一诺晓东海波建国志强春梅丹丹凯峰鑫"
)
_COMPANY_WORDS = [
    "顺达",
    "恒通",
    "鑫源",
    "华宇",
    "远航",
    "瑞丰",
    "宏运",
    "永安",
    "金桥",
    "天成",
    "安捷",
    "诚信",
    "联创",
    "众合",
    "嘉禾",
]
_COMPANY_TRADES = [
    "物流",
    "运输",
    "商贸",
    "建材",
    "汽车租赁",
    "供应链",
    "电子",
    "餐饮管理",
    "工程",
    "货运",
]
_ROADS = [
    "人民",
    "解放",
    "中山",
    "建设",
    "新华",
    "和平",
    "胜利",
    "文化",
    "朝阳",
    "长江",
    "黄河",
    "青年",
    "光明",
    "友谊",
    "工业",
    "东风",
    "迎宾",
    "幸福",
    "北京",
    "南京",
]
_ROAD_KINDS = ("路", "大道", "街")

# Prefixes of Chinese mobile numbers in service (China Mobile, Unicom, Telecom, Broadnet).
_MOBILE_PREFIXES = tuple(
    [
        "130",
        "131",
        "132",
        "133",
        "134",
        "135",
        "136",
        "137",
        "138",
        "139",
        "145",
        "147",
        "150",
        "151",
        "152",
        "153",
        "155",
        "156",
        "157",
        "158",
        "159",
        "166",
        "173",
        "175",
        "176",
        "177",
        "178",
        "180",
        "181",
        "182",
        "183",
        "184",
        "185",
        "186",
        "187",
        "188",
        "189",
        "191",
        "193",
        "195",
        "196",
        "198",
        "199",
    ]
)

_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(3**i % 31 for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
_VIN_YEAR = "ABCDEFGHJKLMNPRSTVWXY123456789"  # model-year codes, A = 1980/2010, cycle of 30
_PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"  # plates omit I and O


def uscc_check(first17: str) -> str:
    """The GB 32100-2015 check character of a unified social credit code."""
    total = sum(_USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARSET[(31 - total % 31) % 31]


def org_code_check(first8: str) -> str:
    """The GB 11714 check character of a 9-character organization code (digits body)."""
    value = 11 - sum(int(c) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def luhn_check(digits: str) -> str:
    """The Luhn check digit to append to ``digits`` (as on the 15th digit of an IMEI)."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(map(str, rng.integers(0, 10, n)))


def person_name(rng: np.random.Generator) -> str:
    """A Chinese personal name: a common surname and one or two given characters."""
    surname = _SURNAMES[rng.choice(len(_SURNAMES), p=_SURNAME_WEIGHTS / _SURNAME_WEIGHTS.sum())]
    size = 1 if rng.random() < 0.3 else 2
    return surname + "".join(rng.choice(list(_GIVEN_CHARS), size))


def company_name(rng: np.random.Generator, city_zh: str) -> str:
    """A company name registered in ``city_zh``, e.g. ``广州顺达物流有限公司``."""
    return f"{city_zh}{rng.choice(_COMPANY_WORDS)}{rng.choice(_COMPANY_TRADES)}有限公司"


def mobile_number(rng: np.random.Generator) -> str:
    """An 11-digit mainland mobile number with a prefix in service."""
    return str(rng.choice(_MOBILE_PREFIXES)) + _digits(rng, 8)


def resident_id(rng: np.random.Generator, province_code: str, birth: date, male: bool) -> str:
    """An 18-character resident id: region, birth date, sequence (odd = male), check digit."""
    region = f"{province_code}01{rng.integers(1, 6):02d}"
    sequence = int(rng.integers(0, 500)) * 2 + (1 if male else 0)
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + resident_id_check(body)


def credit_code(rng: np.random.Generator, province_code: str) -> str:
    """A unified social credit code of a company (registration 9, type 1: enterprise)."""
    org_body = _digits(rng, 8)
    body = f"91{province_code}01{rng.integers(1, 6):02d}{org_body}{org_code_check(org_body)}"
    return body + uscc_check(body)


def street_address(rng: np.random.Generator, province_zh: str, city_zh: str) -> str:
    """A plausible residential address in the city, down to the flat."""
    prefix = city_zh + "市" if province_zh == city_zh + "市" else f"{province_zh}{city_zh}市"
    road = f"{rng.choice(_ROADS)}{rng.choice(_ROAD_KINDS)}{rng.integers(1, 999)}号"
    floor, door = rng.integers(1, 33), rng.integers(1, 5)
    flat = f"{rng.integers(1, 30)}栋{rng.integers(1, 5)}单元{floor}{door:02d}室"
    return prefix + road + flat


def vin(rng: np.random.Generator, wmi: str, model_year: int) -> str:
    """A 17-character VIN for manufacturer ``wmi`` with a valid check digit at position 9."""
    chars = np.array(list(_VIN_CHARS))
    descriptor = "".join(rng.choice(chars, 5))
    year = _VIN_YEAR[(model_year - 1980) % 30]
    plant = str(rng.choice(chars))
    body = f"{wmi}{descriptor}0{year}{plant}{_digits(rng, 6)}"
    return body[:8] + vin_check(body) + body[9:]


def plate(rng: np.random.Generator, abbreviation: str, city_letter: str, nev: bool) -> str:
    """A licence plate, e.g. ``粤A3K9B7``; new-energy plates have 6 characters starting D or F."""
    chars = np.array(list(_PLATE_CHARS))
    if nev:
        return f"{abbreviation}{city_letter}{rng.choice(['D', 'F'])}{_digits(rng, 5)}"
    tail = list(rng.choice(chars, 5))
    tail[-1] = str(rng.integers(0, 10))  # ordinary plates end in a digit far more often than not
    return f"{abbreviation}{city_letter}{''.join(tail)}"


def jt808_terminal_phone(rng: np.random.Generator) -> str:
    """A 12-digit JT/T 808 terminal phone number: an IoT SIM number padded with a leading 0."""
    return "0" + str(rng.choice(["144", "148", "146"])) + _digits(rng, 8)


def imei(rng: np.random.Generator, tac: str) -> str:
    """A 15-digit IMEI: 8-digit type allocation code, 6-digit serial and the Luhn digit."""
    body = tac + _digits(rng, 6)
    return body + luhn_check(body)
