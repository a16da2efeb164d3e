"""Identity generators: check digits, real maker codes, determinism and uniqueness."""

from __future__ import annotations

import re

import pytest
from fleet_helpers import shipped_profile

from mendersim.errors import ConfigError
from mendersim.fleet.identity import (
    VIN_ALPHABET,
    IdentityGenerator,
    check_capacity,
    device_rng,
    gs1_check_digit,
    model_year_code,
    vin_check_digit,
)
from mendersim.fleet.schema import MAX_GROUP_COUNT

# Published VINs with valid check digits: the NHTSA/Wikipedia textbook example (check X),
# a widely cited Honda Accord VIN, a BMW VIN and the all-ones VIN.
KNOWN_VINS = ["1M8GDM9AXKP042788", "1HGCM82633A004352", "WBA3A5C57CF256651", "11111111111111111"]
# Published GTINs: EAN-13 4006381333931, UPC-A 036000291452, ISBN 9780306406157, and UDI-DIs
# from published labels (Medtronic, Philips, GE Healthcare, Boston Scientific).
KNOWN_GTINS = [
    "4006381333931",
    "036000291452",
    "9780306406157",
    "00643169634589",
    "00884838101883",
    "00840682142809",
    "08714729831587",
]


def generate(profile: str, count: int, *, seed: int = 1, slot: int = 0, device_type="dt"):
    spec = shipped_profile(profile)["identity"]
    generator = IdentityGenerator(spec, seed=seed, slot=slot)
    return [generator.make(i, device_rng(seed, slot, i), device_type) for i in range(count)]


@pytest.mark.parametrize("vin", KNOWN_VINS)
def test_vin_check_digit_of_known_vins(vin):
    assert vin_check_digit(vin) == vin[8]


def test_vin_check_digit_detects_a_changed_character():
    assert vin_check_digit("1M8GDM9AXKP042789") != "X"
    with pytest.raises(ValueError, match="not a VIN character"):
        vin_check_digit("1M8GDM9AXKP04278O")


def test_model_year_codes():
    assert [model_year_code(y) for y in (1980, 2001, 2009, 2010, 2019, 2024, 2030)] == list(
        "A19AKRY"
    )


@pytest.mark.parametrize("gtin", KNOWN_GTINS)
def test_gs1_check_digit_of_known_gtins(gtin):
    assert gs1_check_digit(gtin[:-1]) == gtin[-1]


def test_vins_are_valid_and_use_the_profiles_makers():
    spec = shipped_profile("automotive")["identity"]
    wmis = {m["wmi"]: m["name"] for m in spec["manufacturers"]}
    years = {model_year_code(y) for y in spec["model_years"]}
    for id_data, maker in generate("automotive", 2000):
        vin = id_data["vin"]
        assert re.fullmatch(f"[{VIN_ALPHABET}]{{17}}", vin), vin
        assert not set(vin) & set("IOQ")
        assert vin_check_digit(vin) == vin[8]
        assert wmis[vin[:3]] == maker
        assert vin[9] in years
    assert {maker for _, maker in generate("automotive", 500)} == set(wmis.values())


def test_macs_carry_the_profiles_vendor_ouis():
    ouis = {
        m["oui"].lower(): m["name"]
        for m in shipped_profile("smart-building")["identity"]["manufacturers"]
    }
    seen = set()
    for id_data, maker in generate("smart-building", 2000):
        mac = id_data["mac"]
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac), mac
        assert ouis[mac[:8]] == maker
        seen.add(maker)
    assert seen == set(ouis.values())


def test_udi_device_identifiers_are_gtin14_of_the_makers_prefix():
    makers = {m["name"]: m for m in shipped_profile("medical")["identity"]["manufacturers"]}
    for id_data, maker in generate("medical", 2000, device_type="infusion-pump-imx7d"):
        udi_di = id_data["udi_di"]
        assert re.fullmatch(r"\d{14}", udi_di)
        assert gs1_check_digit(udi_di[:-1]) == udi_di[-1]
        assert udi_di[1:].startswith(makers[maker]["company_prefix"])
        assert id_data["serial"].startswith(makers[maker]["serial_prefix"])
    # The UDI-DI names the model: one per maker and device type.
    per_model = {(m, d["udi_di"]) for d, m in generate("medical", 300, device_type="x")}
    assert len(per_model) == len({m for m, _ in per_model})


def test_industrial_serials_follow_each_makers_format():
    makers = {m["name"]: m for m in shipped_profile("industrial")["identity"]["manufacturers"]}
    for id_data, maker in generate("industrial", 2000):
        spec = makers[maker]
        digits = "[0-9A-F]" if spec.get("serial_radix") == 16 else "[0-9]"
        pattern = re.escape(spec["serial_prefix"]) + digits + f"{{{spec['serial_digits']}}}"
        assert re.fullmatch(pattern, id_data["serial"]), id_data["serial"]


@pytest.mark.parametrize("profile", ["automotive", "smart-building", "medical", "industrial"])
def test_identities_unique_over_100000_and_across_groups(profile):
    first = generate(profile, 100_000)
    second = generate(profile, 5_000, slot=1)  # another group of the same kind
    keys = {tuple(sorted(d.items())) for d, _ in first + second}
    assert len(keys) == 105_000


def test_identities_are_deterministic_under_the_seed():
    assert generate("automotive", 50, seed=3) == generate("automotive", 50, seed=3)
    assert generate("automotive", 50, seed=3) != generate("automotive", 50, seed=4)


def test_capacity_refuses_more_groups_than_codes():
    spec = shipped_profile("smart-building")["identity"]  # 2^24 codes: 16 groups
    check_capacity([(spec, i) for i in range(16)], "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml: groups\[16\]: too many groups with mac"):
        check_capacity([(spec, i) for i in range(17)], "f.yaml")
    generator = IdentityGenerator(spec, seed=1, slot=0)
    with pytest.raises(ValueError):
        generator.make(MAX_GROUP_COUNT, device_rng(1, 0, 0), "dt")
