"""Property: whatever a server answers at each step, a send ends in success or a classified failure.

Hypothesis builds a reply stream for every step (greeting, EHLO, AUTH, MAIL,
RCPT, DATA, end of data, QUIT): codes in and out of range, ``-``/space/none/tab
separators, random bytes, CRLF/LF/CR/no line ending, several lines, closes. The
transport runs against it through ``run_test`` (which only catches
``SendFailure``): any other exception, a hang past the bound, an unclassified
failure, a failure without hints or a text that is not valid UTF-8 fails.

The CI run is bounded (``CI_EXAMPLES``); ``pytest -m fuzz`` runs the long one.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.hostile.helpers import SECRET, assert_clean, run
from tests.hostile.helpers import smtp_settings as make_settings
from tests.hostile.server import Action, Answer, Close, Hostile, Send, hostile_server
from transports.errors import FailureClass

CI_EXAMPLES = 50
FUZZ_EXAMPLES = 2000
TIMEOUT = 0.3
STEPS = ("EHLO", "AUTH", "AUTH+", "MAIL", "RCPT", "DATA", ".", "RSET", "QUIT")

codes = st.sampled_from(
    [b"220", b"235", b"250", b"250", b"250", b"334", b"354", b"421", b"454", b"500"]
    + [b"530", b"535", b"550", b"552", b"999", b"000", b"abc", b"25", b"2500", b"", b"-1"]
)
separators = st.sampled_from([b" ", b" ", b"-", b"", b"\t"])
# No line ending is rarer: each one costs a step timeout.
endings = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""])
texts = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"AUTH PLAIN LOGIN CRAM-MD5", b"SIZE 10", b"SIZE \xc2\xb2", b"STARTTLS"]),
)
reply_lines = st.tuples(codes, separators, texts, endings).map(lambda t: b"".join(t))
good = {
    "GREETING": b"220 fuzz ESMTP\r\n",
    "EHLO": b"250-fuzz\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n",
    "AUTH": b"235 2.7.0 ok\r\n",
    "AUTH+": b"235 2.7.0 ok\r\n",
    "MAIL": b"250 ok\r\n",
    "RCPT": b"250 ok\r\n",
    "DATA": b"354 go\r\n",
    ".": b"250 queued as FUZZ1\r\n",
    "RSET": b"250 ok\r\n",
    "QUIT": b"221 bye\r\n",
}


def answers(step: str) -> st.SearchStrategy[Answer]:
    """A well-formed reply most of the time (so later steps are reached), else a hostile one."""
    hostile: st.SearchStrategy[Answer] = st.tuples(
        st.lists(reply_lines, min_size=1, max_size=4).map(b"".join), st.booleans()
    ).map(lambda t: _with_close(t[0], t[1]))
    return st.one_of(st.just(good[step]), st.just(good[step]), hostile)


def _with_close(data: bytes, close: bool) -> Answer:
    actions: tuple[Action, ...] = (Send(data), Close()) if close else (Send(data),)
    return actions


scripts = st.builds(
    lambda greeting, replies: Hostile(greeting=greeting, replies=replies),
    answers("GREETING"),
    st.fixed_dictionaries(
        {step: st.lists(answers(step), min_size=1, max_size=2) for step in STEPS}
    ),
)


async def _scenario(script: Hostile) -> None:
    async with hostile_server(script) as server:
        # Below the settings' 1 s minimum on purpose (model_copy skips validation):
        # many generated replies never complete, and each waits out the timeout.
        fast = make_settings(server.port).model_copy(update={"timeout": TIMEOUT})
        ran = await run(fast)
    # At most a few steps can each wait out the timeout (the failing one and QUIT).
    assert ran.seconds < 10 * TIMEOUT + 2, f"took {ran.seconds:.2f} s"
    assert_clean(ran)
    event("sent" if ran.outcome.ok else f"failed at {ran.failure.step.value}")
    if ran.outcome.ok:
        assert ran.outcome.result is not None
        ran.outcome.result.reply.encode("utf-8")
        return
    failure = ran.failure
    assert failure.failure_class is not FailureClass.UNEXPECTED, failure
    assert failure.hints, failure
    assert SECRET not in str(failure)


PROPERTY_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@settings(max_examples=CI_EXAMPLES, **PROPERTY_SETTINGS)  # type: ignore[arg-type]
@given(script=scripts)
def test_any_reply_stream_ends_in_success_or_classified_failure(script: Hostile) -> None:
    asyncio.run(_scenario(script))


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, **PROPERTY_SETTINGS)  # type: ignore[arg-type]
@given(script=scripts)
def test_fuzz_reply_streams_long_run(script: Hostile) -> None:
    asyncio.run(_scenario(script))
