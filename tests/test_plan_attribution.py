"""Which recorded server event answers which client event, where a recording interleaves them: the item
a commit makes, a push-to-talk commit pipelined with response.create, and a response that follows a
rejected response.create. Each was misattributed by the plan compiler once (found by mutation testing)."""

from __future__ import annotations

import json

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session
from mockrealtime.core.engine import ReplaySession
from mockrealtime.protocol import ClientEventValidator

from recorded_events import ev, silence, srv


def connected(*events: RecordedEvent, **kw) -> ReplaySession:
    engine = ReplaySession(Cassette(name="t", dialect="ga", sessions=[Session(list(events), None)], matching={}), **kw)
    engine.start(0)
    engine.pop_due(1e12)
    return engine


def types(engine: ReplaySession) -> list[str]:
    return [json.loads(f)["type"] for f in engine.pop_due(1e12)]


COMMITTED_ITEM = {"id": "item_rec2", "type": "message", "role": "user", "status": "completed",
                  "content": [{"type": "input_audio", "transcript": None}]}
COMMIT = (
    srv(0, "session.created", 1, session={"type": "realtime"}),
    ev("client", 10, "input_audio_buffer.append", audio=silence(200)),
    ev("client", 20, "input_audio_buffer.commit"),
)
COMMIT_ANSWER = (
    srv(21, "input_audio_buffer.committed", 2, previous_item_id=None, item_id="item_rec2"),
    srv(22, "conversation.item.added", 3, previous_item_id=None, item=COMMITTED_ITEM),
    srv(23, "conversation.item.done", 4, previous_item_id=None, item=COMMITTED_ITEM),
)
RESPONSE = (
    srv(50, "response.created", 5, response={"id": "resp_1", "status": "in_progress", "output": []}),
    srv(70, "response.done", 6, response={"id": "resp_1", "status": "completed", "output": []}),
)


def test_the_item_a_commit_makes_is_its_answer_and_is_sent_once():
    """The recorded echo of the committed item answers the commit: the session model makes it, and the
    recorded copy is not sent again after it."""
    engine = connected(*COMMIT, *COMMIT_ANSWER)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 1)
    engine.receive({"type": "input_audio_buffer.commit"}, 2)
    assert types(engine) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]


def test_push_to_talk_with_commit_and_response_create_back_to_back_replays_without_divergence():
    """A client that sends commit and response.create together (push to talk): the recorded model saw
    the committed item, as the live one does."""
    engine = connected(*COMMIT, ev("client", 20, "response.create"), *COMMIT_ANSWER, *RESPONSE)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 1)
    engine.receive({"type": "input_audio_buffer.commit"}, 2)
    engine.receive({"type": "response.create"}, 3)
    assert types(engine) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
                             "response.created", "response.done"]
    assert list(engine.divergences) == []


def test_the_response_after_a_rejected_response_create_belongs_to_the_next_one():
    """The API rejected the first response.create (its recorded error); the response that follows
    answers the second."""
    engine = connected(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 200, "response.create", event_id="rec_rc", response={"output_modalities": ["bogus"]}),
        srv(201, "error", 2, error={"type": "invalid_request_error", "code": "invalid_value", "message": "recorded",
                                    "param": "response.output_modalities[0]", "event_id": "rec_rc"}),
        ev("client", 300, "response.create"),
        *RESPONSE,
        validator=ClientEventValidator("ga"),
    )
    engine.feed(json.dumps({"type": "response.create", "response": {"output_modalities": ["bogus"]}}), 1)
    assert types(engine) == ["error"]
    engine.receive({"type": "response.create"}, 2)
    assert types(engine) == ["response.created", "response.done"]


def refused_then_answered() -> ReplaySession:
    return connected(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 200, "response.create", event_id="rec_rc", response={"modalities": ["text"]}),
        srv(201, "error", 2, error={"type": "invalid_request_error", "code": "unknown_parameter",
                                    "message": "Unknown parameter: 'response.modalities'.", "param": "response.modalities",
                                    "event_id": "rec_rc"}),
        ev("client", 300, "response.create"),
        *RESPONSE,
        validator=ClientEventValidator("ga"),
    )


def test_a_valid_response_create_gets_the_response_not_the_error_recorded_for_a_refused_one():
    """The recorded client's first response.create was refused by validation; a client whose first one
    is valid gets the response the recording shows next, as the real API would answer it."""
    engine = refused_then_answered()
    engine.feed(json.dumps({"type": "response.create"}), 1)
    assert types(engine) == ["response.created", "response.done"]
    assert list(engine.divergences) == []


def test_the_refused_response_create_itself_still_gets_the_recorded_error():
    engine = refused_then_answered()
    engine.feed(json.dumps({"type": "response.create", "response": {"modalities": ["text"]}}), 1)
    assert types(engine) == ["error"]
    engine.feed(json.dumps({"type": "response.create"}), 2)
    assert types(engine) == ["response.created", "response.done"]
