"""Configuration swaps under load, bounded: tests/soak/swaps.py for 12 s (one swap a second, one
refused configuration in the middle) against Envoy with 2 workers; `make soak` runs it for 60 s.
What counts as wrongly allowed, stale and hung is defined in that script's docstring."""

import sys

from conftest import ROOT, require_envoy

sys.path.insert(0, str(ROOT / "tests/soak"))
import swaps  # noqa: E402


def test_swaps_under_load_allow_nothing_wrongly_and_answer_every_request():
    require_envoy()
    args = swaps.parse_args(["--duration", "12"])
    figures = swaps.run(args)
    swaps.print_table(figures, args)
    assert figures["swapper_error"] is None, figures["swapper_error"]
    assert figures["envoy_alive"]
    assert figures["update_rejected"] == 1 and figures["update_success"] == figures["accepted"] + 1, figures
    # Each generation answered: the swaps really took effect under the load.
    assert figures["generations_seen_forwarding"] >= figures["accepted"] - 1, figures
    assert figures["requests"] >= 300, figures["requests"]
    assert figures["wrongly_allowed"] == 0, figures["wrongly_allowed_examples"]
    assert figures["hung"] == 0
    assert figures["stale"] == 0, figures["stale_examples"]
    assert figures["crossed_a_swap"] > 0 and figures["crossed_a_swap_answered"] == figures["crossed_a_swap"]
    assert figures["five_xx"] == {}, figures["five_xx"]
    # From the first swap on (the first replacement is a one-off step of a few MiB).
    assert figures["rss_growth_percent"] <= 5, figures["rss_kib_samples"]


def test_the_judge_catches_what_it_should():
    """The verdicts the run relies on, on made-up answers: each of these would be a failure."""
    from load import Outcome

    def answer(kind, tag, config, user):
        headers = {"x-user-id": [user]} if user else {}
        if config:
            headers["x-config"] = [config]
        return Outcome(kind, 0, 1, 200, {"headers": headers}, tag=tag)

    alice = swaps.identity("alice")
    wrong = [answer("web-invalid", ("deny",), "g2", "x"),
             answer("web-session", ("web", alice), "g2", swaps.identity("bob")),
             answer("web-session", ("web", alice), None, alice),
             answer("web-session", ("web", alice), "g7", alice),  # g7: the refused one
             answer("api-none", ("api", None), "g2", "guest"),
             answer("api-session", ("api", alice), "g3", alice),
             answer("api-session", ("api", alice), "g2", "guest"),
             answer("only-g", ("only", 3), "g4", "guest")]
    assert all(swaps.judge(o, refused=7) for o in wrong)
    right = [answer("web-session", ("web", alice), "g2", alice),
             answer("api-none", ("api", None), "g3", "guest"),
             answer("api-session", ("api", alice), "g2", alice),
             answer("only-g", ("only", 4), "g4", "guest"),
             Outcome("web-invalid", 0, 1, 401, None, tag=("deny",))]
    assert not any(swaps.judge(o, refused=7) for o in right)
