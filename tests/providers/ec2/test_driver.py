"""The ec2 driver against moto's server: life cycle, idempotent create, listing by tag
(describing only what changed), untagged instances left alone, key import, offerings and prices."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from datetime import UTC
from typing import Any

import pytest

from canopy.domain.errors import AlreadyExists, CloudError
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import PowerAction, RemoteState
from canopy.providers.base import CANOPY_ID_TAG
from canopy.providers.ec2 import listing
from canopy.providers.ec2.driver import Ec2Compute, client_token
from canopy.providers.ec2.options import Ec2Options
from canopy.providers.ec2.prices import shipped
from canopy.providers.ec2.translate import parse_time
from tests.providers.ec2.conftest import REGION, aws_client_tokens, client, inject


def public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " test@canopy"


def driver(url: str, *, ec2_client: Any = None, **options: Any) -> Ec2Compute:
    opts = Ec2Options(region=REGION, endpoint_url=url, **options)
    return Ec2Compute("aws", opts, concurrency=4, client=ec2_client)


def spec(canopy_id: str, image: str, **kw: Any) -> ServerSpec:
    return ServerSpec(
        canopy_id=canopy_id,
        name=kw.pop("name", "web"),
        flavor_name="m1.small",
        resources=Resources(1, 2048, 20),
        remote_flavor=kw.pop("remote_flavor", "t3.small"),
        remote_image=image,
        **kw,
    )


def instances(ec2: Any, **filters: list[str]) -> list[dict[str, Any]]:
    f = [{"Name": k.replace("_", "-"), "Values": v} for k, v in filters.items()]
    out = []
    for r in ec2.describe_instances(Filters=f)["Reservations"]:
        out.extend(r["Instances"])
    return out


async def test_life_cycle(moto: str, ec2: Any, ami: str) -> None:
    d = driver(moto)
    try:
        created = await d.create(
            spec("11111111-aaaa-4bbb-8ccc-000000000001", ami, zone="us-east-1b")
        )
        assert created.canopy_id == "11111111-aaaa-4bbb-8ccc-000000000001"
        assert created.name == "web-canopy-11111111"
        assert created.zone == "us-east-1b"
        assert created.flavor == "t3.small"
        rid = created.remote_id
        (inst,) = instances(ec2, instance_id=[rid])
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert tags == {CANOPY_ID_TAG: created.canopy_id, "Name": "web-canopy-11111111"}
        got = await d.get(rid)
        assert got is not None and got.state == RemoteState.RUNNING
        assert got.addresses.get("private")
        await d.power(rid, PowerAction.STOP)
        got = await d.get(rid)
        assert got is not None and got.state == RemoteState.STOPPED
        await d.power(rid, PowerAction.START)
        got = await d.get(rid)
        assert got is not None and got.state == RemoteState.RUNNING
        await d.power(rid, PowerAction.REBOOT_SOFT)
        got = await d.get(rid)
        assert got is not None and got.state == RemoteState.RUNNING
        await d.delete(rid)
        assert await d.get(rid) is None
        assert await d.find(created.canopy_id) is None
        (listed,) = await d.list()
        assert listed.remote_id == rid and listed.state == RemoteState.DELETED
        await d.delete(rid)  # gone already: still success
        await d.delete("i-0123456789abcdef0")  # never existed: success
        assert await d.get("i-0123456789abcdef0") is None
    finally:
        await d.close()


async def test_a_create_for_one_canopy_id_makes_one_instance(moto: str, ec2: Any, ami: str) -> None:
    d = driver(moto)
    try:
        sid = "22222222-aaaa-4bbb-8ccc-000000000002"
        first = await d.create(spec(sid, ami))
        again = await d.create(spec(sid, ami))
        assert again.remote_id == first.remote_id
        assert [i["InstanceId"] for i in instances(ec2, **{"tag:canopy:id": [sid]})] == [
            first.remote_id
        ]
    finally:
        await d.close()


async def test_a_lost_answer_is_retried_without_a_second_instance(moto: str, ami: str) -> None:
    """RunInstances reached moto but its answer was lost: the retry sends the same
    ClientToken (AWS would return the first instance; moto ignores tokens) and, before
    that, finds the instance by its tag."""
    own = client(moto)
    tokens: list[str] = []
    lost = [True]

    def record(params: dict[str, Any], **_: Any) -> None:
        tokens.append(params["ClientToken"])

    def lose(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if lost[0]:
            lost[0] = False
            from botocore.exceptions import ReadTimeoutError

            raise ReadTimeoutError(endpoint_url=moto)

    own.meta.events.register("provide-client-params.ec2.RunInstances", record)
    own.meta.events.register("after-call.ec2.RunInstances", lose)
    d = driver(moto, ec2_client=own)
    sid = "33333333-aaaa-4bbb-8ccc-000000000003"
    try:
        from canopy.domain.errors import TransientError

        with pytest.raises(TransientError):
            await d.create(spec(sid, ami))
        again = await d.create(spec(sid, ami))
        assert tokens == [client_token(sid)]  # the retry found it: no second RunInstances
        listed = [r for r in await d.list() if r.canopy_id == sid]
        assert [r.remote_id for r in listed] == [again.remote_id]
    finally:
        await d.close()


async def test_a_token_spent_on_a_dead_instance_moves_to_the_next(moto: str, ami: str) -> None:
    """With AWS's token behaviour: the same token twice is one instance; a token whose
    instance is terminated (a failed boot, retried here) moves on to the next token."""
    own = client(moto)
    made = aws_client_tokens(own)
    d = driver(moto, ec2_client=own)
    sid = "44444444-aaaa-4bbb-8ccc-000000000004"
    try:
        first = await d.create(spec(sid, ami))
        assert made == {sid: first.remote_id}
        await d.delete(first.remote_id)
        second = await d.create(spec(sid, ami))
        assert second.remote_id != first.remote_id
        assert made == {sid: first.remote_id, client_token(sid, 1): second.remote_id}
        assert (await d.create(spec(sid, ami))).remote_id == second.remote_id  # by its tag
    finally:
        await d.close()


async def test_list_is_by_tag_in_chunks_and_ignores_untagged(
    moto: str, ec2: Any, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "IDS_PER_CALL", 5)
    own = client(moto)
    calls: list[tuple[str, int]] = []

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        ids = params.get("InstanceIds") or next(
            (f["Values"] for f in params.get("Filters", []) if f["Name"] == "instance-id"), []
        )
        calls.append((model.name, len(ids)))

    own.meta.events.register("provide-client-params.ec2.*", count)
    d = driver(moto, ec2_client=own)
    try:
        ids = {f"55555555-aaaa-4bbb-8ccc-{n:012d}" for n in range(12)}
        for sid in sorted(ids):
            await d.create(spec(sid, ami))
        untagged = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
        other = ec2.run_instances(
            ImageId=ami,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "mine"}]}
            ],
        )
        calls.clear()
        listed = await d.list()
        assert {r.canopy_id for r in listed} == ids
        assert all(r.state == RemoteState.RUNNING and r.addresses for r in listed)
        # 12 instances never described, 5 ids a call: 3 descriptions of them all, and no
        # status: they are described whatever it would say.
        assert calls == [("DescribeTags", 0), *[("DescribeInstances", n) for n in (5, 5, 2)]]
        calls.clear()
        assert {r.remote_id: r for r in await d.list()} == {r.remote_id: r for r in listed}
        # Described now: 3 status calls, and nothing changed, so no description.
        assert calls == [("DescribeTags", 0), *[("DescribeInstanceStatus", n) for n in (5, 5, 2)]]
        foreign = {untagged["Instances"][0]["InstanceId"], other["Instances"][0]["InstanceId"]}
        assert not foreign & {r.remote_id for r in listed}
    finally:
        await d.close()


async def test_list_describes_only_what_changed(moto: str, ec2: Any, ami: str) -> None:
    own = client(moto)
    described: list[list[str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        described.append(sorted(params["Filters"][0]["Values"]))

    own.meta.events.register("provide-client-params.ec2.DescribeInstances", record)
    d = driver(moto, ec2_client=own)
    try:
        made = [
            await d.create(spec(f"77777777-aaaa-4bbb-8ccc-{n:012d}", ami, first_attempt=True))
            for n in range(3)
        ]
        first = {r.remote_id: r for r in await d.list()}
        assert described == [sorted(r.remote_id for r in made)]
        described.clear()
        assert {r.remote_id: r for r in await d.list()} == first  # nothing changed
        assert described == []
        stopped = made[0].remote_id
        ec2.stop_instances(InstanceIds=[stopped])
        now = {r.remote_id: r for r in await d.list()}
        assert described == [[stopped]]
        assert now[stopped].state == RemoteState.STOPPED
        assert {k: v for k, v in now.items() if k != stopped} == {
            k: v for k, v in first.items() if k != stopped
        }
        # A canopy id tag removed behind canopy's back: no longer canopy's, not listed.
        gone = made[1].remote_id
        ec2.delete_tags(Resources=[gone], Tags=[{"Key": CANOPY_ID_TAG}])
        assert gone not in {r.remote_id for r in await d.list()}
        # Terminated: described once more, then listed as deleted while EC2 lists it.
        described.clear()
        ec2.terminate_instances(InstanceIds=[made[2].remote_id])
        dead = {r.remote_id: r for r in await d.list()}[made[2].remote_id]
        assert dead.state == RemoteState.DELETED and described == [[made[2].remote_id]]
    finally:
        await d.close()


async def test_a_burst_of_creates_is_listed_in_few_calls(
    moto: str, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passes while creates land: each instance is described once, when it is first
    listed, with no status call before; later passes ask only the status of those
    described (EC2 calls are what an emulator's CPU, or an account's API rate, is spent on)."""
    monkeypatch.setattr(listing, "IDS_PER_CALL", 10)
    own = client(moto)
    calls: Counter[str] = Counter()
    own.meta.events.register("before-call.ec2.*", lambda model, **_: calls.update([model.name]))
    d = driver(moto, ec2_client=own)
    try:
        for wave in range(3):  # 3 waves of 20 creates, a pass after each
            for n in range(20):
                sid = f"12121212-aaaa-4bbb-8ccc-{wave:06d}{n:06d}"
                await d.create(spec(sid, ami, first_attempt=True))
            assert len(await d.list()) == 20 * (wave + 1)
        assert calls == {
            "RunInstances": 60,
            "DescribeTags": 3,
            "DescribeInstances": 6,  # 60 instances, each once, 10 a call
            "DescribeInstanceStatus": 2 + 4,  # the 20, then the 40 described before
        }
    finally:
        await d.close()


async def test_times_are_parsed_by_the_standard_library(moto: str, ami: str) -> None:
    d = driver(moto)
    try:
        made = await d.create(spec("13131313-aaaa-4bbb-8ccc-000000000001", ami))
        assert made.created_at is not None and made.created_at.tzinfo is UTC
    finally:
        await d.close()


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T12:00:00.000Z",
        "2026-11-29T12:00:00Z",
        "2026-11-29T14:00:00.5+02:00",
        "Sun, 29 Nov 2026 12:00:00 GMT",
        "1796040000",
    ],
)
def test_parse_time_agrees_with_botocore(text: str) -> None:
    from botocore.utils import parse_timestamp

    assert parse_time(text) == parse_timestamp(text)
    assert parse_time(text).utcoffset() is not None


async def test_calls_that_start_together_make_one_client(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    real = Ec2Compute._make_client

    def counted(self: Ec2Compute) -> Any:
        time.sleep(0.05)  # a slow construction: the other calls arrive meanwhile
        made.append(real(self))
        return made[-1]

    monkeypatch.setattr(Ec2Compute, "_make_client", counted)
    d = Ec2Compute("aws", Ec2Options(region=REGION, endpoint_url=moto), concurrency=8)
    try:
        await asyncio.gather(*(d.get("i-0123456789abcdef0") for _ in range(8)))
        assert len(made) == 1
    finally:
        await d.close()


async def test_list_describes_again_after_the_refresh_time(moto: str, ami: str) -> None:
    own = client(moto)
    described: list[str] = []
    own.meta.events.register(
        "before-call.ec2.DescribeInstances", lambda model, **_: described.append(model.name)
    )
    d = driver(moto, ec2_client=own, describe_refresh_seconds=1e-9)
    try:
        await d.create(spec("88888888-aaaa-4bbb-8ccc-000000000001", ami, first_attempt=True))
        await d.list()
        await d.list()
        assert len(described) == 2  # stale at once: each pass describes it again
    finally:
        await d.close()


async def test_list_survives_a_status_call_naming_an_unknown_instance(moto: str, ami: str) -> None:
    """DescribeInstanceStatus fails for the whole call when one id is unknown to EC2
    (DescribeTags may lag behind a termination): those instances are described instead."""
    own = client(moto)
    refused = inject(own, "DescribeInstanceStatus", "InvalidInstanceID.NotFound")
    d = driver(moto, ec2_client=own)
    try:
        sid = "99999999-aaaa-4bbb-8ccc-000000000009"
        made = await d.create(spec(sid, ami, first_attempt=True))
        for _ in range(3):
            (listed,) = await d.list()
            assert listed.remote_id == made.remote_id and listed.canopy_id == sid
            assert listed.state == RemoteState.RUNNING
        assert len(refused) == 2  # the first pass describes it without asking its status
    finally:
        await d.close()


async def test_keypairs_are_imported_once(moto: str, ec2: Any) -> None:
    d = driver(moto)
    key = public_key()
    try:
        await d.import_keypair("canopy-u1-k-abcdef", key)
        with pytest.raises(AlreadyExists):
            await d.import_keypair("canopy-u1-k-abcdef", key)
        names = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
        assert names == ["canopy-u1-k-abcdef"]
    finally:
        await d.close()


async def test_zones_are_the_configured_ones_or_the_regions(moto: str) -> None:
    d = driver(moto)
    mine = driver(moto, zones=["us-east-1c", "us-east-1a"])
    try:
        zones = await d.zones()
        assert zones[:2] == ["us-east-1a", "us-east-1b"] and len(zones) >= 3
        assert await mine.zones() == ["us-east-1c", "us-east-1a"]
    finally:
        await d.close()
        await mine.close()


async def test_offerings_are_priced_from_the_table_and_the_config(moto: str) -> None:
    d = driver(moto, prices={"t3.small": 0.001}, instance_types=["t3.*", "m5.large"])
    try:
        offers = {o.name: o for o in await d.offerings()}
        table = shipped()
        assert offers["t3.micro"].price_per_hour == table.price(REGION, "t3.micro")
        assert (offers["t3.micro"].vcpus, offers["t3.micro"].ram_mb) == (2, 1024)
        assert offers["t3.small"].price_per_hour == 0.001
        sizes = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
        allowed = {f"t3.{s}" for s in sizes} | {"m5.large"}
        # Types the table does not price (t3.medium there) are left out, unless configured.
        priced = {t for t in allowed if table.price(REGION, t) is not None} | {"t3.small"}
        assert set(offers) == priced
    finally:
        await d.close()


def test_the_shipped_price_table_is_dated_and_sourced() -> None:
    table = shipped()
    assert table.date == "2025-03-02"
    assert "Libcloud" in table.source
    assert table.price("us-east-1", "t3.micro") == 0.0104
    assert table.price("us-east-1", "no.such") is None


async def test_an_unknown_image_is_a_clear_fault(moto: str) -> None:
    d = driver(moto)
    try:
        with pytest.raises(CloudError) as e:
            await d.create(spec("66666666-aaaa-4bbb-8ccc-000000000006", "ami-00000000deadbeef0"))
        assert type(e.value) is CloudError
        assert "InvalidAMIID" in str(e.value)
    finally:
        await d.close()


async def test_a_first_attempt_makes_one_call_and_a_retry_looks_first(moto: str, ami: str) -> None:
    own = client(moto)
    calls: list[str] = []
    own.meta.events.register("before-call.ec2.*", lambda model, **_: calls.append(model.name))
    d = Ec2Compute("aws", Ec2Options(region=REGION, endpoint_url=moto), client=own)
    try:
        s = spec("99999999-aaaa-4bbb-8ccc-000000000001", ami, zone="us-east-1b")
        made = await d.create(dataclasses.replace(s, first_attempt=True))
        assert calls == ["RunInstances"]
        calls.clear()
        again = await d.create(s)  # a retry: its look-up finds the instance
        assert again.remote_id == made.remote_id
        assert calls == ["DescribeInstances"]
    finally:
        await d.close()


class PagedTags:
    """canopy's client, with DescribeTags paged by MaxResults / NextToken as AWS pages it
    (moto answers every tag at once, whatever MaxResults says)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.asked: list[tuple[int, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def describe_tags(self, **args: Any) -> dict[str, Any]:
        limit, token = int(args.pop("MaxResults")), args.pop("NextToken", None)
        self.asked.append((limit, token))
        tags = self._inner.describe_tags(**args)["Tags"]
        start = int(token or 0)
        out: dict[str, Any] = {"Tags": tags[start : start + limit]}
        if start + limit < len(tags):
            out["NextToken"] = str(start + limit)
        return out


async def test_list_page_is_one_page_of_tags_and_the_instances_it_names(
    moto: str, ec2: Any, ami: str
) -> None:
    own = PagedTags(client(moto))
    described: list[list[str]] = []
    own._inner.meta.events.register(
        "provide-client-params.ec2.DescribeInstances",
        lambda params, **_: described.append(sorted(params["Filters"][0]["Values"])),
    )
    d = driver(moto, ec2_client=own)
    try:
        made = [
            await d.create(spec(f"31313131-aaaa-4bbb-8ccc-{n:012d}", ami, first_attempt=True))
            for n in range(12)
        ]
        pages = []
        marker: str | None = None
        while True:
            page = await d.list_page(None, marker, 2)  # 5 tags a page at least (AWS's floor)
            pages.append(page.servers)
            if page.next is None:
                break
            marker = page.next
        assert [len(p) for p in pages] == [5, 5, 2]
        assert [limit for limit, _ in own.asked] == [5, 5, 5]
        listed = [r.remote_id for p in pages for r in p]
        assert sorted(listed) == sorted(r.remote_id for r in made)  # each once
        # Each page described only its own instances, never described before.
        assert [len(ids) for ids in described] == [5, 5, 2]
        assert sorted(rid for ids in described for rid in ids) == sorted(listed)
        # A canopy id removed: the instance's description is dropped once a listing ends.
        gone = made[0].remote_id
        ec2.delete_tags(Resources=[gone], Tags=[{"Key": CANOPY_ID_TAG}])
        first = await d.list_page(None, None, 5)
        assert gone in d._descriptions.known  # a listing under way: not yet
        assert first.next is not None
        rest = await d.list()
        assert gone not in d._descriptions.known
        assert gone not in {r.remote_id for r in [*first.servers, *rest]}
        assert len(d._descriptions.known) == 11
    finally:
        await d.close()
