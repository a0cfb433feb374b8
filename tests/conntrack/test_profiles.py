"""The documented behaviour per kernel profile, through the replay node (no kernel needed)."""

from __future__ import annotations

from typing import Any

import pytest

from kplab.netfilter.conntrack.profiles import PROFILE_5_4, PROFILE_6_1, Profile, Sysctls, get_profile
from kplab.netfilter.conntrack.replay import ISN_ORIG, ISN_REPLY, Node, parse_sequence, replay

from .cases import DATA


def run(name: str, profile: Profile, **sysctl: int) -> list[dict[str, Any]]:
    settings = Sysctls()
    for key, value in sysctl.items():
        settings.set(key, str(value))
    steps = parse_sequence((DATA / f"{name}.jsonl").read_text(), name)
    return replay(steps, Node(profile, settings), ISN_ORIG, ISN_REPLY)


def test_old_duplicate_is_invalid_on_5_4_and_ignored_on_6_1() -> None:
    old = run("seq_under_old_duplicate", PROFILE_5_4)[9]
    assert (old["ctstate"], old["nat"], old["ignored"]) == ("INVALID", False, False)
    assert old["reason"] == "nf_ct_tcp: SEQ is under the lower bound (already ACKed data retransmitted)"
    assert old["out_src"] == "10.0.1.2:80"  # the blog's trigger: the reply escapes reverse DNAT
    new = run("seq_under_old_duplicate", PROFILE_6_1)[9]
    assert (new["ctstate"], new["nat"], new["ignored"]) == ("ESTABLISHED", True, True)
    assert new["reason"].startswith("SEQ is under lower bound ")
    assert new["out_src"] == "192.168.0.2:80"


def test_overly_delayed_ack_is_invalid_on_5_4_and_ignored_on_6_1() -> None:
    assert run("ack_under_overly_delayed", PROFILE_5_4)[9]["ctstate"] == "INVALID"
    new = run("ack_under_overly_delayed", PROFILE_6_1)[9]
    assert new["ignored"] and new["reason"].startswith("ignored ACK under lower bound")


def test_small_overshoot_ignored_with_td_end_moved_on_6_1_only() -> None:
    old = run("seq_over_small_overshoot", PROFILE_5_4)
    assert old[5]["ctstate"] == "INVALID"
    assert old[6]["ctstate"] == "INVALID"  # the client's ACK of that data acks unseen data
    new = run("seq_over_small_overshoot", PROFILE_6_1)
    assert new[5]["ignored"] and new[5]["reason"] == "144 bytes more than expected"
    assert new[6]["ctstate"] == "ESTABLISHED" and not new[6]["ignored"]  # td_end moved: ACK ok


@pytest.mark.parametrize("profile", [PROFILE_5_4, PROFILE_6_1], ids=["5.4", "6.1"])
def test_beyond_the_window_and_unseen_acks_are_invalid_everywhere(profile: Profile) -> None:
    assert run("seq_over_large", profile)[5]["ctstate"] == "INVALID"
    assert run("ack_over_unseen_data", profile)[5]["ctstate"] == "INVALID"


@pytest.mark.parametrize("profile", [PROFILE_5_4, PROFILE_6_1], ids=["5.4", "6.1"])
def test_be_liberal_accepts_and_nats(profile: Profile) -> None:
    row = run("seq_over_large", profile, nf_conntrack_tcp_be_liberal=1)[5]
    assert (row["ctstate"], row["ignored"], row["nat"]) == ("ESTABLISHED", False, True)


def test_pickup_after_delete_new_without_nat_then_invalid_when_strict() -> None:
    rows = run("pickup_after_delete", PROFILE_6_1)
    assert (rows[6]["ctstate"], rows[6]["nat"], rows[6]["entry"]["timeout_s"]) == ("NEW", False, 300)
    strict = run("pickup_after_delete", PROFILE_6_1, nf_conntrack_tcp_loose=0)
    assert strict[6]["ctstate"] == "INVALID" and strict[6]["entry"]["state"] is None


@pytest.mark.parametrize("profile", [PROFILE_5_4, PROFILE_6_1], ids=["5.4", "6.1"])
def test_pickup_of_a_pure_ack_gets_300s(profile: Profile) -> None:
    """Its window check fails (ACK above the unknown peer) and is waived by BE_LIBERAL without
    recording the window: last_win stays 0, so the zero-window rule picks RETRANS on any kernel."""
    text = '{"action": "ct-delete"}\n{"dir": "reply", "flags": "A", "seq": 1, "ack": 101, "win": 509}\n'
    rows = replay(parse_sequence(text, "inline"), Node(profile, Sysctls()), ISN_ORIG, ISN_REPLY)
    assert rows[1]["entry"] == {"state": "ESTABLISHED", "timeout_s": 300, "assured": False}


def test_rst_exact_closes_inexact_keeps_established_below_maxack_invalid() -> None:
    exact = run("rst_exact", PROFILE_6_1)[6]
    assert exact["entry"] == {"state": "CLOSE", "timeout_s": 10, "assured": True}
    inexact = run("rst_inexact_in_window", PROFILE_6_1)
    assert inexact[6]["entry"] == {"state": "ESTABLISHED", "timeout_s": 10, "assured": True}
    # the next ACK refreshes it; UNACK because the inexact RST's seq moved the client's td_end
    assert inexact[7]["entry"]["timeout_s"] == 300
    below = run("rst_below_maxack", PROFILE_6_1)[6]
    assert (below["ctstate"], below["reason"]) == ("INVALID", "invalid rst")
    ignored = run("rst_below_maxack", PROFILE_6_1, nf_conntrack_tcp_ignore_invalid_rst=1)[6]
    assert ignored["entry"] == {"state": "ESTABLISHED", "timeout_s": 10, "assured": True}  # as inexact


def test_fin_teardown_and_time_wait_reopen() -> None:
    states = [r["entry"]["state"] for r in run("fin_teardown", PROFILE_6_1)[:-1]]
    assert states[-4:] == ["FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT"]
    rows = run("time_wait_reopen", PROFILE_6_1)
    assert rows[7]["entry"]["state"] == "TIME_WAIT"
    assert (rows[8]["ctstate"], rows[8]["nat"], rows[8]["entry"]["state"]) == ("NEW", True, "SYN_SENT")


def test_retransmissions_drop_the_timeout_to_retrans() -> None:
    rows = run("retransmissions", PROFILE_6_1)
    assert [r["entry"]["timeout_s"] for r in rows[5:9]] == [432000, 432000, 432000, 300]


def test_syn_retransmit_keeps_timeout_only_on_6_1() -> None:
    assert run("syn_retransmit", PROFILE_6_1)[1]["entry"]["timeout_s"] == 120
    assert run("syn_retransmit", PROFILE_5_4)[1]["entry"]["timeout_s"] == 120


def test_invalid_flag_combinations() -> None:
    rows = run("invalid_flags", PROFILE_6_1)
    assert [r["reason"] for r in rows[5:8]] == ["invalid tcp flag combination"] * 3


def test_host_profile_follows_the_release() -> None:
    assert get_profile("host", "6.18.44-fc").window_ignore
    assert not get_profile("host", "5.15.0-91-generic").window_ignore


def test_rst_answering_an_ignored_syn_must_come_from_the_other_side_on_6_18() -> None:
    released = run("rst_same_dir_after_ignored_syn", PROFILE_6_1)[6]
    assert released["entry"]["state"] == "CLOSE"  # 6.1 as released: window check skipped
    host = run("rst_same_dir_after_ignored_syn", get_profile("host", "6.18.44"))[6]
    assert (host["ctstate"], host["reason"]) == (
        "INVALID",
        "ACK is over upper bound 3000000002 (ACKed data not seen yet)",
    )
